/**
 * Write batching (src/server/write-batching.ts) reaches the TCP socket
 * through ws's private `_socket`: this fails if an engine.io or ws upgrade
 * takes it away (batching would then silently stop), and checks that a
 * burst relayed while the socket is corked all arrives, in order. It
 * applies to socket.io's websocket transport (WS_ENGINE=socket.io, and
 * clients that upgrade from long-polling).
 * @module
 */
import assert from 'node:assert/strict';
import { Socket as NetSocket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import type { RunningServer } from '../src/server/server.js';
import { collect, connect, disconnectAll, eventually, request, startTestServer } from './support/util.js';

describe('write batching', () => {
  let server: RunningServer;
  before(async () => {
    server = await startTestServer({ wsEngine: 'socket.io' });
  });
  after(async () => {
    disconnectAll();
    await server.close();
  });

  it('finds the TCP socket of a websocket connection, and a corked burst arrives whole and in order', async () => {
    const sharer = await connect(server.url);
    const joiner = await connect(server.url);
    await request(sharer, 'share', 'wb-name');
    const conn = server.io.of('/').sockets.get(sharer.id!)!.conn as unknown as { transport: { name: string; socket: { _socket?: unknown } } };
    assert.equal(conn.transport.name, 'websocket');
    assert.ok(conn.transport.socket._socket instanceof NetSocket, 'ws keeps its TCP socket in _socket');

    const got = collect(sharer, 'launchResponse');
    // Sent without acks in one go: the server reads them together and flushes them together.
    for (let i = 0; i < 9; i++) joiner.emit('launch', 'wb-name', 'wb-uid', `m${i}`);
    await eventually(() => got.length === 9, 5000, 'the burst to arrive');
    assert.deepEqual(got, Array.from({ length: 9 }, (_, i) => ['wb-uid', `m${i}`]));
  });
});

describe('write batching, direct engine', () => {
  let server: RunningServer;
  before(async () => {
    server = await startTestServer();
  });
  after(async () => {
    disconnectAll();
    await server.close();
  });

  it('delivers a burst written while corked whole and in order, and what follows it too', async () => {
    const sharer = await connect(server.url);
    const joiner = await connect(server.url);
    await request(sharer, 'share', 'wb-direct');
    const got = collect(sharer, 'launchResponse');
    for (let i = 0; i < 9; i++) joiner.emit('launch', 'wb-direct', 'wb-uid', `m${i}`);
    await eventually(() => got.length === 9, 5000, 'the burst to arrive');
    // A single message in a later tick is not left corked.
    joiner.emit('launch', 'wb-direct', 'wb-uid', 'after');
    await eventually(() => got.length === 10, 5000, 'the message after the burst');
    assert.deepEqual(got, [...Array.from({ length: 9 }, (_, i) => ['wb-uid', `m${i}`]), ['wb-uid', 'after']]);
  });
});
