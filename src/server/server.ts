/**
 * The composition root: builds the core, its registry and delivery, the
 * socket.io endpoint and the HTTP routes from one Config, and listens. The
 * CLI and the tests both start the server through `startServer`.
 * @module
 */
// First: sizes stream state objects before any stream exists (see the module).
import './stream-shape.js';
// Before anything loads ws: its receiver keeps the unmask it finds then.
import './ws-unmask.js';
import { readFileSync } from 'node:fs';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { Server as SocketIOServer } from 'socket.io';
import { LocalDelivery } from '../cluster/local-delivery.js';
import { InMemoryRegistry } from '../cluster/in-memory-registry.js';
import { systemClock, type Clock } from '../core/clock.js';
import type { Delivery } from '../core/delivery.js';
import type { Registry } from '../core/registry.js';
import { SignalingCore } from '../core/signaling-core.js';
import type { Config } from './config.js';
import { demoRoutes } from './demo-routes.js';
import { httpRoutes } from './http-routes.js';
import { createLogger, type Logger } from './logger.js';
import { ServerMetrics } from './metrics.js';
import { SocketEndpoint } from './socket-endpoint.js';
import { relayParser } from './relay-parser.js';
import { batchWrites } from './write-batching.js';
import { Admission } from './admission.js';
import { parseTrustedProxies } from './client-address.js';
import { budgetFactory, type LimiterBackend } from './limiter-store.js';
import { ShareAuth } from './share-auth.js';
import type { ClusterMode } from './cluster-mode.js';
import { DirectWebSocketServer } from './direct-websocket-server.js';

export interface ServerOptions {
  config: Config;
  logger?: Logger;
  clock?: Clock;
  /**
   * Where per-address rate limits count. Cluster mode passes its Redis
   * client here so the limits hold across nodes.
   * @default { kind: 'memory' }
   */
  limiterBackend?: LimiterBackend;
}

export interface RunningServer {
  /** Base URL, e.g. http://127.0.0.1:5000 */
  readonly url: string;
  readonly port: number;
  readonly core: SignalingCore;
  readonly metrics: ServerMetrics;
  readonly io: SocketIOServer;
  /** Open client connections, socket.io's and the direct websocket engine's. */
  readonly connections: number;
  readonly logger: Logger;
  /** Stops accepting, disconnects every socket, releases the registry. */
  close(): Promise<void>;
}

export const VERSION: string = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string })
  .version;

/** Frames larger than this close the connection (engine.io's maxHttpBufferSize). */
const frameLimit = (maxMessageSize: number): number => Math.max(1_000_000, 2 * maxMessageSize);

export async function startServer(options: ServerOptions): Promise<RunningServer> {
  const { config } = options;
  const logger = options.logger ?? createLogger(config.logLevel);
  // The metrics read the core's counts lazily, when scraped.
  let core: SignalingCore | undefined;
  // Cluster mode when REDIS_URL is set; the module (and ioredis) loads only then.
  const cluster: ClusterMode | undefined = config.redisUrl
    ? (await import('./cluster-mode.js')).createClusterMode(config, logger, () => core!)
    : undefined;
  const registry: Registry = cluster?.registry ?? new InMemoryRegistry();
  const delivery: Delivery = cluster?.delivery ?? new LocalDelivery();
  const metrics = new ServerMetrics(() => core!.localStats());
  const admission = new Admission({
    origins: config.origins,
    trustedProxies: parseTrustedProxies(config.trustedProxies),
    maxConnections: config.maxConnections,
    maxConnectionsPerAddress: config.maxConnectionsPerAddress,
    connectRate: config.addressConnectRate,
    eventRate: config.addressEventRate,
    budgets: budgetFactory(
      options.limiterBackend ?? (cluster ? { kind: 'redis', client: cluster.redis, keyPrefix: config.redisPrefix } : { kind: 'memory' }),
    ),
    metrics: metrics.registry,
  });
  const endpoint = new SocketEndpoint({
    metrics,
    logger,
    maxMessageSize: config.maxMessageSize,
    rate: { rate: config.rateLimit, burst: config.rateBurst },
    admission,
    shareAuth: config.shareAuth ? new ShareAuth(config.shareAuth) : undefined,
    maxBufferedBytes: config.maxBufferedBytes,
    socketIdPrefix: cluster?.socketIdPrefix,
  });
  core = new SignalingCore({
    registry,
    delivery,
    sink: endpoint.sink,
    clock: options.clock ?? systemClock,
    limits: {
      defaultTtl: config.defaultTtl,
      maxTtl: config.maxTtl,
      maxSharesPerSocket: config.maxSharesPerSocket,
      maxRoutesPerSocket: config.maxRoutesPerSocket,
      maxJoinsPerShare: config.maxJoinsPerShare,
      maxPendingPerSocket: config.maxPendingPerSocket,
    },
    observer: {
      relayed: (kind, ms) => metrics.recordRelay(kind, ms),
      backgroundFailed: (operation, error) => logger.error({ err: error, operation }, 'registry update failed'),
    },
  });

  if (cluster) {
    try {
      await cluster.start();
    } catch (error) {
      admission.close();
      throw error;
    }
  }
  const handler = httpRoutes({ core, metrics, logger, version: VERSION, extra: demoRoutes({ logger }), cluster: cluster && (() => ({ ...cluster.state() })) });
  const httpServer: HttpServer = config.tls ? createHttpsServer({ cert: config.tls.cert, key: config.tls.key }, handler) : createHttpServer(handler);
  const io = new SocketIOServer(httpServer, {
    cors: { origin: config.origins === true ? '*' : [...config.origins] },
    // Clients of the original's era: socket.io-client 1.x and 2.x.
    allowEIO3: true,
    // socket.io's parser, but relayed messages go out as the JSON text they came in.
    parser: relayParser,
    maxHttpBufferSize: frameLimit(config.maxMessageSize),
    pingInterval: config.pingInterval,
    pingTimeout: config.pingTimeout,
    serveClient: true,
    // CORS headers only bind browsers' polling requests; browsers open
    // websockets to any origin, so Admission enforces a restricted origin
    // list on every handshake too, with the connection limits.
    allowRequest: admission.allowRequest,
  });
  admission.watch(io.engine);
  batchWrites(io.engine);
  endpoint.attach(io.of('/'), core);
  // Installed after socket.io, whose upgrade listener it takes over for the requests it does not serve.
  const direct =
    config.wsEngine === 'direct'
      ? new DirectWebSocketServer({
          maxPayload: frameLimit(config.maxMessageSize),
          pingInterval: config.pingInterval,
          pingTimeout: config.pingTimeout,
          admission,
          endpoint,
        })
      : undefined;
  direct?.attach(httpServer);

  await new Promise<void>((resolve, reject) => {
    httpServer.once('error', reject);
    const onListening = (): void => {
      httpServer.off('error', reject);
      resolve();
    };
    if (config.host) httpServer.listen(config.port, config.host, onListening);
    else httpServer.listen(config.port, onListening);
  });
  httpServer.on('error', (error) => logger.error({ err: error }, 'http server error'));
  const address = httpServer.address() as AddressInfo;
  const shownHost = config.host && config.host !== '0.0.0.0' && config.host !== '::' ? config.host : '127.0.0.1';
  const url = `${config.tls ? 'https' : 'http'}://${shownHost.includes(':') ? `[${shownHost}]` : shownHost}:${address.port}`;
  logger.info({ url, port: address.port, mode: cluster ? 'cluster' : 'memory', node: cluster?.nodeId, version: VERSION }, 'listening');

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> =>
    (closing ??= (async () => {
      logger.info('shutting down');
      const closed = new Promise<void>((resolve) => io.close(() => resolve()));
      // Give the disconnect packets a moment to leave before cutting connections.
      const cut = setTimeout(() => httpServer.closeAllConnections(), 250);
      await Promise.all([closed, direct?.close(250)]);
      clearTimeout(cut);
      admission.close();
      await core.detachAll();
      // Cluster mode: also removes what is left of this node in Redis at once.
      await (cluster ? cluster.close() : Promise.all([registry.close(), delivery.close()]));
      logger.info('stopped');
    })());

  return {
    url,
    port: address.port,
    core,
    metrics,
    io,
    logger,
    close,
    get connections() {
      return io.engine.clientsCount + (direct?.size ?? 0);
    },
  };
}
