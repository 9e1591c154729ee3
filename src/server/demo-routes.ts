/**
 * The demo web app and the operators' status page, as an `extra` hook of
 * httpRoutes: `/` and `/j/<name>` serve the demo, `/status` the status page,
 * `/assets/*` their static files and the browser bundle of the client.
 *
 * Only a fixed list of files is served (no path from a request ever reaches
 * the file system). The built assets come from `npm run build`; when they
 * are missing the page answers 503 saying so.
 * @module
 */
import { readFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from './logger.js';

// From src/server (tsx) and from dist/server (built) alike, ../../ is the package root.
const root = new URL('../../', import.meta.url);

interface Asset {
  file: URL;
  type: string;
  /** Built by scripts/build-browser.mjs rather than kept in git. */
  built: boolean;
}

const asset = (path: string, type: string, built = false): Asset => ({ file: new URL(path, root), type, built });
const html = 'text/html; charset=utf-8';
const js = 'text/javascript; charset=utf-8';
const map = 'application/json; charset=utf-8';

const DEMO_PAGE = asset('demo/index.html', html);
const ASSETS = new Map<string, Asset>([
  ['/status', asset('demo/status.html', html)],
  ['/assets/style.css', asset('demo/style.css', 'text/css; charset=utf-8')],
  ['/assets/app.js', asset('dist/demo/app.js', js, true)],
  ['/assets/app.js.map', asset('dist/demo/app.js.map', map, true)],
  ['/assets/status.js', asset('dist/demo/status.js', js, true)],
  ['/assets/status.js.map', asset('dist/demo/status.js.map', map, true)],
  ['/assets/sigserve-client.js', asset('dist/browser/sigserve-client.js', js, true)],
  ['/assets/sigserve-client.js.map', asset('dist/browser/sigserve-client.js.map', map, true)],
]);

/** A link: /j/ then one path segment (the share name, URL-encoded). */
const LINK = /^\/j\/[^/]+$/;

// The pages load only their own scripts and styles; the link name in the
// path must not leak to other sites through the Referer header.
const SECURITY_HEADERS = {
  'content-security-policy':
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; connect-src 'self' ws: wss:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'",
  'referrer-policy': 'no-referrer',
  'x-content-type-options': 'nosniff',
  'cross-origin-opener-policy': 'same-origin',
};

export interface DemoRoutesOptions {
  /**
   * Keep files in memory after the first read. Off in development so edits
   * show on reload.
   * @default true
   */
  cache?: boolean;
  /** Where read failures other than a missing file are reported. */
  logger?: Logger;
}

/** The `extra` hook for httpRoutes: true when it answered the request. */
export function demoRoutes(options: DemoRoutesOptions = {}): (req: IncomingMessage, res: ServerResponse, path: string) => boolean {
  const cache = new Map<Asset, Buffer>();
  const useCache = options.cache ?? true;

  const load = async (entry: Asset): Promise<Buffer | undefined> => {
    const cached = cache.get(entry);
    if (cached) return cached;
    try {
      const body = await readFile(entry.file);
      if (useCache) cache.set(entry, body);
      return body;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw error;
    }
  };

  return (req, res, path) => {
    const entry = path === '/' || LINK.test(path) ? DEMO_PAGE : ASSETS.get(path);
    if (!entry) return false;
    load(entry).then(
      (body) => {
        if (!body) {
          const hint = entry.built ? 'the browser assets are not built: run `npm run build`\n' : 'not found\n';
          res.writeHead(entry.built ? 503 : 404, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' });
          res.end(hint);
          return;
        }
        res.writeHead(200, {
          'content-type': entry.type,
          'content-length': body.byteLength,
          'cache-control': 'no-cache',
          ...SECURITY_HEADERS,
        });
        res.end(req.method === 'HEAD' ? undefined : body);
      },
      (error: unknown) => {
        options.logger?.error({ err: error, path }, 'demo route failed');
        if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' });
        res.end('internal error\n');
      },
    );
    return true;
  };
}
