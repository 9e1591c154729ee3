/**
 * The low-level client's own behaviour: timeouts, cancellation, closing,
 * shares that run out while disconnected, and its import boundary.
 * @module
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { after, afterEach, before, describe, it } from 'node:test';
import { SignalingClient, SignalingClientError } from '../../src/client/index.js';
import type { RunningServer } from '../../src/server/server.js';
import { eventually, startTestServer } from '../support/util.js';
import { nextEvent } from './client-suite.js';

/** A port nothing listens on. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

describe('SignalingClient', () => {
  let server: RunningServer;
  const clients: SignalingClient[] = [];
  const make = (url: string, options: ConstructorParameters<typeof SignalingClient>[1] = {}): SignalingClient => {
    const client = new SignalingClient(url, { ...options, socket: { transports: ['websocket'], ...options.socket } });
    clients.push(client);
    return client;
  };
  const shares = async (): Promise<number> => ((await (await fetch(`${server.url}/healthz`)).json()) as { shares: number }).shares;

  before(async () => {
    server = await startTestServer();
  });
  afterEach(() => {
    for (const c of clients.splice(0)) c.close();
  });
  after(() => server.close());

  it('fails a request with timeout when no server answers', async () => {
    const client = make(`http://127.0.0.1:${await closedPort()}`, { requestTimeout: 400 });
    const started = Date.now();
    await assert.rejects(client.share('nowhere'), (error: unknown) => {
      assert.ok(error instanceof SignalingClientError);
      assert.equal(error.code, 'timeout');
      assert.equal(error.fromServer, false);
      assert.equal(error.event, 'share');
      return true;
    });
    assert.ok(Date.now() - started >= 350);
  });

  it('cancels a queued request with its AbortSignal: it never reaches the server', async () => {
    const client = make(server.url);
    const controller = new AbortController();
    const sharing = client.share('cancelled', { signal: controller.signal });
    controller.abort(new Error('not any more'));
    await assert.rejects(sharing, { message: 'not any more' });
    await client.ready();
    // A request made after the cancelled one completes: the queue moved on.
    assert.equal((await client.share('kept')).name, 'kept');
    assert.equal(await shares(), 1);
    assert.deepEqual(client.shares, ['kept']);
  });

  it('rejects pending requests with closed, and every request after close', async () => {
    const client = make(`http://127.0.0.1:${await closedPort()}`);
    const pending = client.launch('x', 'uid', 'm');
    client.close();
    await assert.rejects(pending, { code: 'closed' });
    await assert.rejects(client.share('y'), { code: 'closed' });
  });

  it('sends requests made before the connection in order', async () => {
    const sharer = make(server.url);
    const seen: unknown[] = [];
    sharer.on('launchResponse', (_uid, message) => seen.push(message));
    await sharer.share('ordered');
    const joiner = make(server.url);
    assert.equal(joiner.connected, false);
    await Promise.all([1, 2, 3, 4, 5].map((n) => joiner.launch('ordered', 'uid-o', n)));
    await eventually(() => seen.length === 5, 5000, 'five launches');
    assert.deepEqual(seen, [1, 2, 3, 4, 5]);
  });

  it('reports a share that ran out while disconnected as expired, and does not restore it', async () => {
    const client = make(server.url, { socket: { reconnectionDelay: 1500, reconnectionDelayMax: 1500, randomizationFactor: 0 } });
    await client.share('brief', { ttl: 500 });
    let restored = false;
    client.on('shareRestored', () => (restored = true));
    const expired = nextEvent<[string]>(client, 'shareExpired', 10_000);
    client.socket.io.engine.close();
    assert.deepEqual(await expired, ['brief']);
    await nextEvent(client, 'connected', 10_000).catch(() => undefined);
    assert.deepEqual(client.shares, []);
    assert.equal(restored, false);
    assert.equal(await shares(), 0);
  });
});

describe('client import boundary', () => {
  it('imports only src/protocol, its own modules and socket.io-client', () => {
    const dir = new URL('../../src/client/', import.meta.url);
    for (const file of readdirSync(dir).filter((f) => f.endsWith('.ts'))) {
      const text = readFileSync(new URL(file, dir), 'utf8');
      for (const [, specifier] of text.matchAll(/(?:import|export)\s[^'"]*?from\s+'([^']+)'/g)) {
        assert.ok(
          specifier!.startsWith('./') || specifier!.startsWith('../protocol/') || specifier === 'socket.io-client',
          `src/client/${file} imports ${specifier}`,
        );
      }
    }
  });
});
