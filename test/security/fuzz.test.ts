/**
 * Fuzzing (fast-check) over loopback: malformed engine.io and socket.io
 * frames on bare websockets, malformed long-polling requests, and random
 * argument values for every event from a real socket.io client. After every
 * run a fresh sharer and joiner must still complete an exchange, every ack
 * must have the documented shape, and at the end /healthz counts zero.
 */
import assert from 'node:assert/strict';
import { after, afterEach, before, describe, it } from 'node:test';
import fc from 'fast-check';
import WebSocket from 'ws';
import { errorCodes } from '../../src/protocol/errors.js';
import type { RunningServer } from '../../src/server/server.js';
import { handshake } from '../protocol/probe.js';
import { health, type Topology } from '../support/topology.js';
import { connect, disconnectAll, eventually, startTestServer, type TestSocket } from '../support/util.js';

const RUNS = Number(process.env['FUZZ_RUNS'] ?? 60);

const eventName = fc.constantFrom(
  'share',
  'unshare',
  'launch',
  'answer',
  'connect',
  'disconnect',
  'disconnecting',
  'newListener',
  'error',
  '__proto__',
  'constructor',
  'toString',
  'hasOwnProperty',
  '',
);
const argument = fc.oneof(
  fc.jsonValue({ maxDepth: 4 }),
  fc.string({ maxLength: 300 }),
  fc.constantFrom('__proto__', 'constructor', 'toString', null, -0, 1e308, -1, 0, 2 ** 53, true),
  fc.dictionary(fc.constantFrom('__proto__', 'constructor', 'ttl', 'maxJoins', 'toString'), fc.jsonValue({ maxDepth: 2 })),
);

/** A socket.io packet inside an engine.io message frame, right and wrong in every part. */
const socketIoFrame = fc
  .record({
    engine: fc.constantFrom('4', '4', '4', '0', '1', '2', '3', '5', '6', '7', '9', 'x', ''),
    type: fc.constantFrom('2', '2', '2', '3', '0', '1', '4', '5', '6', '7', 'a', ''),
    attachments: fc.option(fc.oneof(fc.nat({ max: 5 }).map(String), fc.constantFrom('99999999999999999999', '-1', 'x')), { nil: undefined }),
    nsp: fc.option(fc.constantFrom('/', '/admin', '/x', '/\u0000', '', '/' + 'n'.repeat(500)), { nil: undefined }),
    ack: fc.option(fc.oneof(fc.nat().map(String), fc.constantFrom('99999999999999999999999', '0x1', '-1')), { nil: undefined }),
    body: fc.oneof(
      fc.tuple(eventName, fc.array(argument, { maxLength: 5 })).map(([e, args]) => JSON.stringify([e, ...args])),
      fc.array(argument, { maxLength: 4 }).map((a) => JSON.stringify(a)),
      fc.string({ maxLength: 200 }),
      fc.nat({ max: 20_000 }).map((n) => '['.repeat(n)),
      fc.nat({ max: 2_000 }).map((n) => `${'['.repeat(n)}"share"${']'.repeat(n)}`),
      fc.constant('{"__proto__":{"polluted":1}}'),
      fc.constant(''),
    ),
  })
  .map((p) => `${p.engine}${p.type}${p.attachments !== undefined ? `${p.attachments}-` : ''}${p.nsp !== undefined ? `${p.nsp},` : ''}${p.ack ?? ''}${p.body}`);

const frame = fc.oneof(
  { weight: 6, arbitrary: socketIoFrame.map((text) => ({ text })) },
  { weight: 1, arbitrary: fc.string({ maxLength: 500 }).map((text) => ({ text })) },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 2000 }).map((binary) => ({ binary })) },
  { weight: 1, arbitrary: fc.constantFrom('2', '3', '2probe', '5', '6', '1', '40', '41', '4{}').map((text) => ({ text })) },
);

/** Opens a bare websocket, speaks the engine.io open and (usually) the socket.io connect, then sends `frames`. */
async function sendFrames(url: string, frames: ({ text: string } | { binary: Uint8Array })[], connectFirst: boolean): Promise<void> {
  const ws = new WebSocket(`${url.replace('http', 'ws')}/socket.io/?EIO=4&transport=websocket`);
  const closed = new Promise<void>((resolve) => ws.once('close', () => resolve()));
  ws.on('error', () => undefined);
  const opened = await Promise.race([new Promise<boolean>((r) => ws.once('message', () => r(true))), closed.then(() => false)]);
  if (!opened) return;
  if (connectFirst) ws.send('40');
  for (const f of frames) {
    if (ws.readyState !== WebSocket.OPEN) break;
    ws.send('text' in f ? f.text : f.binary);
  }
  // Let the server read everything before the connection goes away.
  if (ws.readyState === WebSocket.OPEN) ws.send('3');
  await Promise.race([closed, new Promise((r) => setTimeout(r, 50))]);
  ws.terminate();
  await closed;
}

/**
 * Closes a long-polling session as a client does: with a poll pending, so
 * the server answers it with the close at once (without one, engine.io
 * keeps the transport 30 s for a last poll, and this process alive).
 */
async function closePolling(base: string, session: { sid: string; eio: string; jsonp: boolean }): Promise<void> {
  const url = `${base}?EIO=${session.eio}&transport=polling&sid=${encodeURIComponent(session.sid)}${session.jsonp ? '&j=0' : ''}`;
  let poll: Promise<unknown> = Promise.resolve();
  for (let i = 0; i < 5; i++) {
    poll = fetch(url).then((r) => r.arrayBuffer(), () => undefined);
    // A poll that returns at once drained something queued: poll again until one waits.
    const returned = await Promise.race([poll.then(() => true), new Promise((r) => setTimeout(() => r(false), 50))]);
    if (!returned) break;
  }
  const close = session.eio === '3' ? '1:1' : '1';
  const init = session.jsonp
    ? { method: 'POST', body: `d=${encodeURIComponent(close)}`, headers: { 'content-type': 'application/x-www-form-urlencoded' } }
    : { method: 'POST', body: close };
  await (await fetch(url, init)).arrayBuffer();
  await poll;
}

describe('fuzzing', () => {
  let server: RunningServer;
  let topology: Topology;
  let checks = 0;
  before(async () => {
    // Limits high enough that fuzzing is never cut short as a flood.
    server = await startTestServer({ rateLimit: 1_000_000, rateBurst: 1_000_000, addressEventRate: 1_000_000, addressConnectRate: 100_000 });
    topology = { url: () => server.url, urls: [server.url], close: () => server.close() };
  });
  afterEach(() => disconnectAll());
  after(() => server.close());

  const stillServes = async (): Promise<void> => {
    await handshake(topology, `fuzz-check-${checks++}`, (url) => connect(url));
  };
  /** Nothing of a closed connection may stay behind. */
  const nothingLeft = (): Promise<void> =>
    eventually(async () => (await health(topology))[0]!.sockets === 0, 3000, 'no socket left').catch(async (error: unknown) => {
      throw new Error(`${(error as Error).message}: ${JSON.stringify(await health(topology))}`);
    });

  it('survives malformed engine.io and socket.io frames on websockets', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(frame, { minLength: 1, maxLength: 30 }), fc.boolean(), async (frames, connectFirst) => {
        await sendFrames(server.url, frames, connectFirst);
        await stillServes();
        await nothingLeft();
      }),
      { numRuns: RUNS },
    );
  });

  it('survives malformed long-polling requests', async () => {
    const base = `${server.url}/socket.io/`;
    const query = fc.record({
      EIO: fc.constantFrom('4', '3', '2', '5', '99', '', 'x'),
      transport: fc.constantFrom('polling', 'websocket', 'webtransport', 'x', ''),
      sid: fc.option(fc.string({ maxLength: 40 }), { nil: undefined }),
      j: fc.option(fc.constantFrom('0', 'x', '"+alert(1)+"'), { nil: undefined }),
    });
    // Sessions some of these requests open (EIO 3 ones join the namespace at once): closed after.
    const opened: { sid: string; eio: string; jsonp: boolean }[] = [];
    await fc.assert(
      fc.asyncProperty(query, fc.constantFrom('GET', 'POST', 'PUT', 'OPTIONS'), fc.string({ maxLength: 400 }), async (q, method, body) => {
        const params = new URLSearchParams(Object.entries(q).filter((e): e is [string, string] => e[1] !== undefined));
        const res = await fetch(`${base}?${params}`, { method, ...(method === 'GET' || method === 'OPTIONS' ? {} : { body }) });
        assert.ok(res.status < 500, `status ${res.status}`);
        // JSONP answers escape the quotes.
        const sid = /\\?"sid\\?":\\?"([\w-]+)/.exec(await res.text())?.[1];
        if (sid) opened.push({ sid, eio: q.EIO, jsonp: q.j !== undefined });
      }),
      { numRuns: RUNS * 2 },
    );
    for (const session of opened) await closePolling(base, session);
    // And garbage sent into a real polling session.
    const open = await (await fetch(`${base}?EIO=4&transport=polling`)).text();
    const sid = (JSON.parse(open.slice(1)) as { sid: string }).sid;
    await fc.assert(
      // Without engine.io close packets: a close without a pending poll makes engine.io wait 30 s for one.
      fc.asyncProperty(fc.array(socketIoFrame.filter((p) => !p.startsWith('1')), { minLength: 1, maxLength: 5 }), async (packets) => {
        const res = await fetch(`${base}?EIO=4&transport=polling&sid=${encodeURIComponent(sid)}`, { method: 'POST', body: packets.join('\x1e') });
        assert.ok(res.status < 500, `status ${res.status}`);
        await res.arrayBuffer();
      }),
      { numRuns: RUNS },
    );
    await closePolling(base, { sid, eio: '4', jsonp: false });
    await stillServes();
    await nothingLeft();
  });

  it('answers random argument values for every event with a documented ack', async () => {
    let fuzzer: TestSocket = await connect(server.url);
    await fc.assert(
      fc.asyncProperty(fc.constantFrom('share', 'unshare', 'launch', 'answer'), fc.array(argument, { maxLength: 5 }), async (event, args) => {
        if (!fuzzer.connected) fuzzer = await connect(server.url);
        const ack = (await (fuzzer.timeout(3000) as unknown as { emitWithAck(e: string, ...a: unknown[]): Promise<unknown> }).emitWithAck(
          event,
          ...args,
        )) as { ok: boolean; error?: { code: string; message: string } };
        assert.equal(typeof ack.ok, 'boolean');
        if (!ack.ok) {
          assert.ok(errorCodes.includes(ack.error!.code as never), `undocumented code ${ack.error!.code}`);
          assert.notEqual(ack.error!.code, 'internal', `internal error for ${event}(${JSON.stringify(args)})`);
          assert.equal(typeof ack.error!.message, 'string');
        }
      }),
      { numRuns: RUNS * 5 },
    );
    await stillServes();
    fuzzer.disconnect();
    await nothingLeft();
  });

  it('is back to zero afterwards', async () => {
    disconnectAll();
    await eventually(
      async () => (await health(topology)).every((h) => h.sockets === 0 && h.shares === 0 && h.routes === 0 && h.registry.shares === 0 && h.registry.routes === 0),
      10_000,
      'every count of /healthz back to zero',
    ).catch(async (error: unknown) => {
      throw new Error(`${(error as Error).message}: ${JSON.stringify(await health(topology))}`);
    });
  });
});
