/**
 * What the direct websocket engine does to keep an idle connection small
 * and that depends on ws's internals (src/server/direct-socket.ts,
 * `releaseChunks`): fails when a ws version stops matching, so the saving
 * is not lost unnoticed. How much is saved is measured by the benchmark.
 * @module
 */
import assert from 'node:assert/strict';
import type { Socket as TcpSocket } from 'node:net';
import { after, describe, it } from 'node:test';
import { WebSocket } from 'ws';
import type { RunningServer } from '../src/server/server.js';
import { connect, disconnectAll, eventually, request, startTestServer, waitFor } from './support/util.js';

/** The server side of a websocket, as ws keeps it on the TCP socket. */
function serverWebSocket(tcp: TcpSocket): { _receiver?: { _buffers?: unknown } } {
  const key = Object.getOwnPropertySymbols(tcp).find((symbol) => symbol.description === 'websocket');
  assert.ok(key, 'ws keeps its WebSocket on the TCP socket under Symbol(websocket)');
  const ws = (tcp as unknown as Record<symbol, { _receiver?: { _buffers?: unknown } } | undefined>)[key];
  assert.ok(ws);
  return ws;
}

describe('direct engine: idle connection memory', () => {
  const servers: RunningServer[] = [];
  after(async () => {
    disconnectAll();
    for (const s of servers) await s.close();
  });

  it("lets go of Node's cached peer address, and of ws's grown chunk list once a connect or pong has drained it", async () => {
    const server = await startTestServer({ pingInterval: 300, pingTimeout: 1000 });
    servers.push(server);
    const upgraded: TcpSocket[] = [];
    server.io.httpServer.on('upgrade', (_req, tcp: TcpSocket) => upgraded.push(tcp));
    const ws = new WebSocket(`${server.url.replace('http', 'ws')}/socket.io/?EIO=4&transport=websocket`);
    const frames: string[] = [];
    ws.on('message', (data) => frames.push(String(data)));
    try {
      await waitFor(ws, 'open');
      await eventually(() => frames.length > 0 && upgraded.length === 1, 3000, 'the engine.io open packet');
      // Node caches the peer address there once read (admission reads it); the engine lets it go.
      assert.ok(Object.hasOwn(upgraded[0]!, '_peername'), 'Node caches the peer address in _peername');
      assert.equal((upgraded[0] as unknown as { _peername?: unknown })._peername, undefined);
      assert.equal(upgraded[0]!.remoteAddress, '127.0.0.1', 'read afresh when asked');
      (upgraded[0] as unknown as { _peername?: unknown })._peername = undefined;
      const receiver = serverWebSocket(upgraded[0]!)._receiver;
      assert.ok(receiver, 'ws keeps its Receiver in _receiver');
      const before = receiver._buffers;
      assert.ok(Array.isArray(before), 'ws queues incoming chunks in the array _buffers');

      ws.send('40');
      await eventually(() => frames.some((f) => f.startsWith('40{"sid":')), 3000, 'socket.io connect');
      assert.ok(Array.isArray(receiver._buffers) && receiver._buffers.length === 0, 'drained');
      assert.notEqual(receiver._buffers, before, 'the array the connect grew was replaced');

      const afterConnect = receiver._buffers;
      const pings = frames.filter((f) => f === '2').length;
      await eventually(() => frames.filter((f) => f === '2').length > pings, 3000, 'a ping');
      ws.send('3');
      await eventually(() => receiver._buffers !== afterConnect, 3000, 'the array the pong grew replaced');
      assert.ok(Array.isArray(receiver._buffers) && receiver._buffers.length === 0);
    } finally {
      ws.terminate();
    }
  });

  it('finds sockets by the table index their ids carry, also when a slot is reused', async () => {
    const server = await startTestServer();
    servers.push(server);
    const first = await Promise.all([connect(server.url), connect(server.url), connect(server.url)]);
    const seen = new Set(first.map((socket) => socket.id));
    assert.equal(seen.size, 3);
    for (const id of seen) assert.match(id!, /^[\w-]{20}$/);
    // The middle one leaves; the next client takes its slot, under an id of its own.
    const gone = first[1]!.id!;
    first[1]!.disconnect();
    await eventually(() => server.connections === 2, 3000, 'the disconnect');
    const next = await connect(server.url);
    assert.ok(!seen.has(next.id!), 'a fresh id');
    assert.equal(next.id!.slice(16), gone.slice(16), 'in the freed slot');

    // Events reach the sockets in both directions, for the new one and an old one.
    await request(next, 'share', 'dm-reuse');
    const offer = waitFor<[string, unknown]>(next, 'launchResponse');
    assert.deepEqual(await request(first[2]!, 'launch', 'dm-reuse', 'u1', { sdp: 'o' }), { ok: true, joinerUID: 'u1' });
    assert.deepEqual(await offer, ['u1', { sdp: 'o' }]);
    const answer = waitFor<[unknown]>(first[2]!, 'answerResponse');
    assert.deepEqual(await request(next, 'answer', 'u1', { sdp: 'a' }), { ok: true });
    assert.deepEqual(await answer, [{ sdp: 'a' }]);
  });
});
