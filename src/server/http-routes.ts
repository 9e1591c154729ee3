/**
 * Plain HTTP beside the socket.io endpoint: health, readiness, metrics.
 * socket.io answers its own path (/socket.io/) before these run.
 * @module
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { SignalingCore } from '../core/signaling-core.js';
import type { Logger } from './logger.js';
import type { ServerMetrics } from './metrics.js';

export interface HttpRoutesOptions {
  core: SignalingCore;
  metrics: ServerMetrics;
  logger: Logger;
  version: string;
  /**
   * Cluster mode: the node's Redis state, shown by /healthz; /readyz answers
   * 503 while `ready` is false. Absent in memory mode (always ready).
   */
  cluster?: () => { ready: boolean; [detail: string]: unknown };
  /** Extra routes (demo pages, cluster state), tried before the 404. */
  extra?: (req: IncomingMessage, res: ServerResponse, path: string) => boolean;
}

export function httpRoutes(options: HttpRoutesOptions): (req: IncomingMessage, res: ServerResponse) => void {
  const { core, metrics, logger, version } = options;
  const started = Date.now();
  return (req, res) => {
    const path = (req.url ?? '/').split('?', 1)[0]!;
    const reply = (status: number, type: string, body: string): void => {
      res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
      res.end(req.method === 'HEAD' ? undefined : body);
    };
    const fail = (error: unknown): void => {
      logger.error({ err: error, path }, 'http route failed');
      if (!res.headersSent) reply(500, 'text/plain; charset=utf-8', 'internal error\n');
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      reply(405, 'text/plain; charset=utf-8', 'method not allowed\n');
      return;
    }
    const health = (): void => {
      // Counts need the registry: while it is away, health still answers.
      core
        .stats()
        .catch(() => ({ ...core.localStats(), registry: null }))
        .then((stats) => {
          const body = {
            status: options.cluster && !options.cluster().ready ? 'degraded' : 'ok',
            mode: options.cluster ? 'cluster' : 'memory',
            version,
            uptimeSeconds: Math.round((Date.now() - started) / 1000),
            sockets: stats.sockets,
            shares: stats.shares,
            routes: stats.joinerRoutes,
            registry: stats.registry,
            ...(options.cluster ? { cluster: options.cluster() } : {}),
          };
          reply(200, 'application/json', JSON.stringify(body));
        }, fail);
    };
    switch (path) {
      case '/readyz':
        if (options.cluster && !options.cluster().ready) {
          // Answered without asking Redis, which is what is away.
          reply(503, 'application/json', JSON.stringify({ status: 'unavailable', version, cluster: options.cluster() }));
          return;
        }
        health();
        return;
      case '/healthz':
        health();
        return;
      case '/metrics':
        metrics.registry.metrics().then((text) => reply(200, metrics.registry.contentType, text), fail);
        return;
    }
    try {
      if (options.extra?.(req, res, path)) return;
    } catch (error) {
      fail(error);
      return;
    }
    reply(404, 'text/plain; charset=utf-8', 'not found\n');
  };
}
