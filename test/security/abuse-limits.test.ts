/**
 * Limits that keep one client from making the server hold unbounded state:
 * slow consumers (a client that stops reading its socket, over websocket
 * and over long-polling), joiners per share, launches waiting for routing.
 */
import assert from 'node:assert/strict';
import { connect as netConnect, type Socket as NetSocket } from 'node:net';
import { after, afterEach, before, describe, it } from 'node:test';
import WebSocket from 'ws';
import { InMemoryRegistry } from '../../src/cluster/in-memory-registry.js';
import { LocalDelivery } from '../../src/cluster/local-delivery.js';
import type { Registry } from '../../src/core/registry.js';
import { SignalingCore } from '../../src/core/signaling-core.js';
import { SignalingError } from '../../src/core/signaling-error.js';
import type { RouteOutcome } from '../../src/core/types.js';
import type { RunningServer } from '../../src/server/server.js';
import { ManualClock } from '../support/manual-clock.js';
import { collect, connect, disconnectAll, eventually, request, startTestServer, waitFor, type TestSocket } from '../support/util.js';

const CAP = 1024 * 1024;
const PAYLOAD = 'x'.repeat(60_000);

async function metric(server: RunningServer, line: string): Promise<number> {
  const text = await (await fetch(`${server.url}/metrics`)).text();
  const found = text.split('\n').find((l) => l.startsWith(line));
  return found ? Number(found.slice(line.length).trim()) : 0;
}

/**
 * A socket.io v4 client on a bare websocket whose TCP socket can be paused:
 * then it reads nothing more, and the kernel buffers between it and the
 * server fill up.
 */
async function rawWebsocketClient(url: string): Promise<{ ws: WebSocket; tcp: NetSocket; frames: string[] }> {
  let tcp: NetSocket | undefined;
  const ws = new WebSocket(`${url.replace('http', 'ws')}/socket.io/?EIO=4&transport=websocket`, {
    createConnection: (options: object) => (tcp = netConnect(options as { port: number; host: string })),
  });
  const frames: string[] = [];
  ws.on('message', (data) => frames.push(data.toString()));
  await waitFor(ws, 'open');
  await eventually(() => frames.some((f) => f.startsWith('0{')), 3000, 'engine.io open');
  ws.send('40');
  await eventually(() => frames.some((f) => f.startsWith('40{')), 3000, 'socket.io connect');
  return { ws, tcp: tcp!, frames };
}

/** Sends launches of PAYLOAD to `name` until `stop()` or `max`, waiting for an ack every `batch`. */
async function pump(joiner: TestSocket, name: string, max: number, stop: () => boolean, batch = 20): Promise<number> {
  let sent = 0;
  while (sent < max && !stop()) {
    for (let i = 0; i < batch - 1; i++) joiner.emit('launch', name, 'j', PAYLOAD);
    await request(joiner, 'launch', name, 'j', PAYLOAD);
    sent += batch;
  }
  return sent;
}

describe('slow consumers', () => {
  let server: RunningServer;
  before(async () => {
    server = await startTestServer({ maxBufferedBytes: CAP, rateLimit: 100_000, rateBurst: 100_000 });
  });
  afterEach(() => disconnectAll());
  after(() => server.close());

  it('disconnects a websocket client that stops reading, before it holds more than the cap', async () => {
    const slow = await rawWebsocketClient(server.url);
    slow.ws.send('420["share","slow-ws"]');
    await eventually(() => slow.frames.some((f) => f.startsWith('430[{"ok":true')), 3000, 'share ack');
    slow.tcp.pause();
    const joiner = await connect(server.url);
    const errors = collect<[{ code: string }]>(joiner, 'signalingError');
    const gone = (): boolean => errors.some(([e]) => e.code === 'sharer-gone');
    const heapBefore = process.memoryUsage().heapUsed;
    // Bounded: 2000 x 60 kB at most; the kernel's socket buffers take some MB first.
    const sent = await pump(joiner, 'slow-ws', 2000, gone);
    await eventually(gone, 10_000, 'sharer-gone after the slow sharer was cut');
    assert.ok(sent < 2000, `cut after ${sent} launches`);
    assert.equal(await metric(server, 'sigserve_slow_consumers_total'), 1);
    assert.ok(process.memoryUsage().heapUsed - heapBefore < 64 * CAP, 'the server did not hoard what it could not send');
    // The connection is dropped with its buffers at once, not after a close
    // handshake the client would never answer.
    await eventually(() => server.connections === 1, 2000, 'the slow connection to be gone');
    slow.ws.terminate();
  });

  it('disconnects a long-polling client that stops polling', async () => {
    const base = `${server.url}/socket.io/?EIO=4&transport=polling`;
    const open = await (await fetch(base)).text();
    const sid = (JSON.parse(open.slice(1)) as { sid: string }).sid;
    const post = (body: string): Promise<Response> => fetch(`${base}&sid=${sid}`, { method: 'POST', body });
    assert.equal(await (await post('40')).text(), 'ok');
    assert.match(await (await fetch(`${base}&sid=${sid}`)).text(), /^40\{/);
    await post('42["share","slow-poll"]');
    // Never polls again: every launchResponse waits in the server's buffer.
    const joiner = await connect(server.url);
    const errors = collect<[{ code: string }]>(joiner, 'signalingError');
    const gone = (): boolean => errors.some(([e]) => e.code === 'sharer-gone');
    await eventually(async () => (await request<{ ok: boolean }>(joiner, 'launch', 'slow-poll', 'j', 'hello')).ok, 3000, 'the share');
    const sent = await pump(joiner, 'slow-poll', 200, gone, 5);
    await eventually(gone, 10_000, 'sharer-gone after the idle poller was cut');
    assert.ok(sent <= Math.ceil(CAP / PAYLOAD.length) + 10, `cut after ${sent} launches`);
    assert.equal(await metric(server, 'sigserve_slow_consumers_total'), 2);
    await eventually(() => server.connections === 1, 2000, 'the idle poller to be gone');
  });

  it('leaves a client that reads alone, whatever it is sent', async () => {
    const sharer = await connect(server.url);
    await request(sharer, 'share', 'fast');
    const received = collect(sharer, 'launchResponse');
    const joiner = await connect(server.url);
    for (let round = 1; round <= 15; round++) {
      await pump(joiner, 'fast', 10, () => false, 10);
      await eventually(() => received.length === round * 10, 5000, `round ${round}`);
    }
    assert.equal(sharer.connected, true);
    assert.equal(await metric(server, 'sigserve_slow_consumers_total'), 2);
  });
});

describe('caps on joiners and pending launches', () => {
  let server: RunningServer;
  before(async () => {
    server = await startTestServer({ maxJoinsPerShare: 2 });
  });
  afterEach(() => disconnectAll());
  after(() => server.close());

  it('admits at most MAX_JOINS_PER_SHARE joiners to a share, even one that asks for more', async () => {
    const sharer = await connect(server.url);
    await request(sharer, 'share', 'capped', { maxJoins: 50 });
    await request(sharer, 'share', 'uncapped');
    for (const name of ['capped', 'uncapped']) {
      const codes: string[] = [];
      for (const uid of ['a', 'b', 'c']) {
        const joiner = await connect(server.url);
        const ack = await request<{ ok: boolean; error?: { code: string } }>(joiner, 'launch', name, uid, 'offer');
        codes.push(ack.ok ? 'ok' : ack.error!.code);
      }
      assert.deepEqual(codes, ['ok', 'ok', 'share-full'], name);
    }
  });

  it('refuses launches past MAX_PENDING_PER_SOCKET while the registry is slow, and serves them again after', async () => {
    // A registry that answers `route` only when told: launches pile up behind the first.
    const gates: (() => void)[] = [];
    const inner = new InMemoryRegistry();
    const route = async (...args: Parameters<Registry['route']>): Promise<RouteOutcome> => {
      await new Promise<void>((resolve) => gates.push(resolve));
      return inner.route(...args);
    };
    const registry = new Proxy(inner, {
      get: (target, key) => {
        if (key === 'route') return route;
        const value: unknown = Reflect.get(target, key);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    }) as Registry;
    const delivered: unknown[] = [];
    const core = new SignalingCore({
      registry,
      delivery: new LocalDelivery(),
      sink: { launchResponse: (_s, _u, m) => delivered.push(m), answerResponse() {}, shareExpired() {}, sharerGone() {} },
      clock: new ManualClock(),
      limits: { defaultTtl: 10_000, maxTtl: 10_000, maxSharesPerSocket: 4, maxRoutesPerSocket: 4, maxPendingPerSocket: 3 },
    });
    core.attach('sharer');
    core.attach('joiner');
    await core.share('sharer', 'room', {});
    const launches = [1, 2, 3].map((n) => core.launch('joiner', 'room', `uid-${n}`, n));
    await assert.rejects(core.launch('joiner', 'room', 'uid-4', 4), (e) => e instanceof SignalingError && e.code === 'rate-limited');
    while (gates.length > 0 || delivered.length < 3) {
      gates.shift()?.();
      await new Promise((r) => setImmediate(r));
    }
    await Promise.all(launches);
    assert.deepEqual(delivered, [1, 2, 3]);
    const late = core.launch('joiner', 'room', 'uid-5', 5);
    await eventually(() => gates.length === 1, 1000, 'routing');
    gates.shift()!();
    await late;
    assert.deepEqual(delivered, [1, 2, 3, 5]);
  });
});
