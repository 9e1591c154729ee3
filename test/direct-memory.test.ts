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
import { eventually, startTestServer, waitFor } from './support/util.js';

/** The server side of a websocket, as ws keeps it on the TCP socket. */
function serverWebSocket(tcp: TcpSocket): { _receiver?: { _buffers?: unknown } } {
  const key = Object.getOwnPropertySymbols(tcp).find((symbol) => symbol.description === 'websocket');
  assert.ok(key, 'ws keeps its WebSocket on the TCP socket under Symbol(websocket)');
  const ws = (tcp as unknown as Record<symbol, { _receiver?: { _buffers?: unknown } } | undefined>)[key];
  assert.ok(ws);
  return ws;
}

describe('direct engine: idle connection memory', () => {
  let server: RunningServer | undefined;
  after(async () => server?.close());

  it("replaces ws's grown chunk list with an empty one once a message has drained it", async () => {
    server = await startTestServer();
    const upgraded: TcpSocket[] = [];
    server.io.httpServer.on('upgrade', (_req, tcp: TcpSocket) => upgraded.push(tcp));
    const ws = new WebSocket(`${server.url.replace('http', 'ws')}/socket.io/?EIO=4&transport=websocket`);
    const frames: string[] = [];
    ws.on('message', (data) => frames.push(String(data)));
    try {
      await waitFor(ws, 'open');
      await eventually(() => frames.length > 0 && upgraded.length === 1, 3000, 'the engine.io open packet');
      const receiver = serverWebSocket(upgraded[0]!)._receiver;
      assert.ok(receiver, 'ws keeps its Receiver in _receiver');
      const before = receiver._buffers;
      assert.ok(Array.isArray(before), 'ws queues incoming chunks in the array _buffers');

      ws.send('40');
      await eventually(() => frames.some((f) => f.startsWith('40{"sid":')), 3000, 'socket.io connect');
      assert.ok(Array.isArray(receiver._buffers) && receiver._buffers.length === 0, 'drained');
      assert.notEqual(receiver._buffers, before, 'the array the message grew was replaced');
    } finally {
      ws.terminate();
    }
  });
});
