/**
 * The guard of src/server/quiet-ends.ts: `end()` behaves as Node's own in
 * every state a stream can be in, and ws still ends finished streams again
 * when a client closes (else the guard saves nothing and can go). How much
 * it saves is measured by the benchmark.
 * @module
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, Socket, type Server } from 'node:net';
import { Duplex, Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import * as ws from 'ws';
import '../src/server/quiet-ends.js';
import type { RunningServer } from '../src/server/server.js';
import { startTestServer, waitFor } from './support/util.js';

type Stream = Writable & { _writableState: { corked: number } };
type Receiver = new (options?: object) => Stream;
const Receiver = (ws as unknown as { Receiver: Receiver }).Receiver;

/** What a caller can see of a stream after `end()`. */
function observe(stream: Writable): object {
  return { ended: stream.writableEnded, finished: stream.writableFinished, destroyed: stream.destroyed, corked: stream.writableCorked, errored: stream.errored };
}

/** Resolves once an end() in flight has finished (a TCP shutdown takes a moment), or after a while if none is. */
async function settled(stream: Writable): Promise<void> {
  await new Promise((r) => setImmediate(r));
  if (stream.writableFinished || stream.destroyed || !stream.writableEnded) return;
  await Promise.race([once(stream, 'finish'), once(stream, 'close'), new Promise((r) => setTimeout(r, 1000))]);
  await new Promise((r) => setImmediate(r));
}

/** A connected pair of TCP sockets over loopback; returns the client side. */
async function tcpPair(server: Server): Promise<Socket> {
  const address = server.address();
  assert.ok(address && typeof address === 'object');
  const client = new Socket();
  client.on('error', () => {});
  client.connect(address.port, '127.0.0.1');
  await once(client, 'connect');
  return client;
}

/** The states `end()` can meet; both streams of a comparison are brought there together. */
const states: [string, (s: Stream) => void | Promise<void>][] = [
  ['open', () => {}],
  ['ending, not finished yet', (s) => void s.end()],
  ['finished', async (s) => {
    s.end();
    await once(s, 'finish');
  }],
  ['destroyed without ending', (s) => void s.destroy()],
  ['errored', (s) => {
    s.on('error', () => {});
    s.destroy(new Error('boom'));
  }],
  ['finished, then corked', async (s) => {
    s.end();
    await once(s, 'finish');
    s.cork();
  }],
];

describe('quiet ends', () => {
  let tcp: Server;
  const peers: Socket[] = [];
  before(async () => {
    tcp = createServer((socket) => {
      socket.on('error', () => {});
      socket.resume();
      peers.push(socket);
    });
    tcp.listen(0, '127.0.0.1');
    await once(tcp, 'listening');
  });
  after(() => {
    for (const p of peers) p.destroy();
    tcp.close();
  });

  const kinds: [string, () => Promise<Stream>, (s: Stream, ...args: unknown[]) => unknown][] = [
    ['net.Socket', async () => (await tcpPair(tcp)) as unknown as Stream, (s, ...args) => (Duplex.prototype.end as (...a: unknown[]) => unknown).apply(s, args)],
    ['ws Receiver', async () => new Receiver({ isServer: true }), (s, ...args) => (Writable.prototype.end as (...a: unknown[]) => unknown).apply(s, args)],
  ];

  for (const [kind, make, nodeEnd] of kinds) {
    for (const [state, reach] of states) {
      it(`${kind}, ${state}: end() leaves the stream as Node's end() does, and a callback gets what Node's gives`, async () => {
        const [ours, theirs] = await Promise.all([make(), make()]);
        await Promise.all([reach(ours), reach(theirs)]);
        assert.equal(ours.end(), ours);
        assert.equal(nodeEnd(theirs), theirs);
        assert.deepEqual(observe(ours), observe(theirs));
        await Promise.all([settled(ours), settled(theirs)]);
        assert.deepEqual(observe(ours), observe(theirs));

        const again = await Promise.all(
          [ours, theirs].map(
            (s, i) =>
              new Promise<string>((resolve) => {
                const cb = (error?: Error | null): void => resolve((error as { code?: string } | null | undefined)?.code ?? String(error ?? null));
                if (i === 0) s.end(cb);
                else nodeEnd(s, cb);
              }),
          ),
        );
        assert.equal(again[0], again[1]);
      });
    }
  }

  it('ws ends finished streams again when a client closes its websocket (what the guard spares)', async () => {
    const server: RunningServer = await startTestServer();
    const repeats: string[] = [];
    const watch = (prototype: { end: (...args: unknown[]) => unknown }, name: string): (() => void) => {
      const guarded = prototype.end;
      prototype.end = function (this: Writable, ...args: unknown[]) {
        if (args.length === 0 && (this.writableFinished || this.destroyed)) repeats.push(name);
        return guarded.apply(this, args);
      };
      return () => void (prototype.end = guarded);
    };
    const unwatch = [watch(Socket.prototype as never, 'socket'), watch(Receiver.prototype as never, 'receiver')];
    try {
      const client = new ws.WebSocket(`${server.url.replace('http', 'ws')}/socket.io/?EIO=4&transport=websocket`);
      const frames: string[] = [];
      client.on('message', (data) => frames.push(String(data)));
      await waitFor(client, 'open');
      client.send('40');
      const deadline = Date.now() + 3000;
      while (!frames.some((f) => f.startsWith('40')) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      assert.ok(frames.some((f) => f.startsWith('40{"sid":')), 'connected');
      client.close();
      await waitFor(client, 'close');
      await new Promise((r) => setTimeout(r, 50));
    } finally {
      for (const u of unwatch) u();
      await server.close();
    }
    // Both sides run ws in this process; each ends its Receiver twice more and its TCP socket once more.
    assert.ok(repeats.filter((r) => r === 'receiver').length >= 2, `receiver ends again: ${repeats.join(', ')}`);
    assert.ok(repeats.includes('socket'), `socket ends again: ${repeats.join(', ')}`);
  });
});
