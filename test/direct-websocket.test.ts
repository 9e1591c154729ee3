/**
 * The direct websocket engine (src/server/direct-websocket-server.ts) seen
 * from outside: which clients it serves, that they and socket.io's clients
 * reach each other, its heartbeats and connect timeout, namespaces and
 * shutdown, and how it reads frames however TCP cuts them (src/server/receiver-feed.ts). The protocol suites (test/protocol.test.ts) run on it too, and
 * once more with WS_ENGINE=socket.io.
 * @module
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { Socket as TcpSocket } from 'node:net';
import { after, afterEach, describe, it } from 'node:test';
import { WebSocket } from 'ws';
import type { RunningServer } from '../src/server/server.js';
import { connect, disconnectAll, eventually, request, startTestServer, waitFor, type Settings } from './support/util.js';

const servers: RunningServer[] = [];
async function server(settings: Settings = {}): Promise<RunningServer> {
  const started = await startTestServer(settings);
  servers.push(started);
  return started;
}

/** A bare websocket speaking engine.io by hand, keeping every text frame it gets. */
async function rawClient(url: string): Promise<{ ws: WebSocket; frames: string[]; closed: Promise<void> }> {
  const ws = new WebSocket(`${url.replace('http', 'ws')}/socket.io/?EIO=4&transport=websocket`);
  const frames: string[] = [];
  ws.on('message', (data, isBinary) => {
    if (!isBinary) frames.push(String(data));
  });
  const closed = new Promise<void>((resolve) => ws.on('close', () => resolve()));
  await waitFor(ws, 'open');
  await eventually(() => frames.length > 0, 3000, 'the engine.io open packet');
  return { ws, frames, closed };
}

describe('direct websocket engine', () => {
  afterEach(() => disconnectAll());
  after(async () => {
    for (const s of servers) await s.close();
  });

  it('serves websocket-only clients itself, polling ones through socket.io, and they signal each other', async () => {
    const s = await server();
    const sharer = await connect(s.url);
    const joiner = await connect(s.url, { transports: ['polling'] });
    assert.equal(s.io.engine.clientsCount, 1, 'only the polling client is an engine.io connection');
    assert.equal(s.connections, 2);

    await request(sharer, 'share', 'dw-mixed');
    const offer = waitFor<[string, unknown]>(sharer, 'launchResponse');
    const launched = await request<{ ok: boolean; joinerUID: string }>(joiner, 'launch', 'dw-mixed', 'u1', { sdp: 'offer\r\n' });
    assert.deepEqual(launched, { ok: true, joinerUID: 'u1' });
    assert.deepEqual(await offer, ['u1', { sdp: 'offer\r\n' }]);
    const answer = waitFor<[unknown]>(joiner, 'answerResponse');
    assert.deepEqual(await request(sharer, 'answer', 'dw-mixed', 'u1', { sdp: 'answer' }), { ok: true });
    assert.deepEqual(await answer, [{ sdp: 'answer' }]);
  });

  it('relays ASCII and non-ASCII messages of every frame-length class exactly as sent', async () => {
    // The engine writes ASCII frames as one Latin-1 string and any other as
    // a UTF-8 buffer, each with a 1-, 3- or 9-byte length after the first
    // byte (below 126, below 65,536, above): every combination must arrive whole.
    const s = await server({ maxMessageSize: 200_000 });
    const sharer = await connect(s.url);
    const joiner = await connect(s.url);
    await request(sharer, 'share', 'dw-sizes');
    const pieces = ['a', 'é', '😀', '\r\n', '"\\'];
    let n = 0;
    for (const size of [1, 60, 125, 126, 1700, 65_530, 70_000]) {
      for (const piece of pieces) {
        const text = piece.repeat(Math.max(1, Math.floor(size / piece.length)));
        const uid = `u${n++}`;
        const offer = waitFor<[string, string]>(sharer, 'launchResponse');
        joiner.emit('launch', 'dw-sizes', uid, text);
        assert.deepEqual(await offer, [uid, text], `launch of ${text.length} × ${JSON.stringify(piece)}`);
        const answer = waitFor<[string]>(joiner, 'answerResponse');
        sharer.emit('answer', 'dw-sizes', uid, { sdp: text });
        assert.deepEqual(await answer, [{ sdp: text }], `answer of ${text.length} × ${JSON.stringify(piece)}`);
      }
    }
  });

  it('leaves websocket clients to socket.io with WS_ENGINE=socket.io', async () => {
    const s = await server({ wsEngine: 'socket.io' });
    await connect(s.url);
    assert.equal(s.io.engine.clientsCount, 1);
    assert.equal(s.connections, 1);
  });

  it('announces its heartbeat, keeps clients that answer it and drops one that does not', async () => {
    const s = await server({ pingInterval: 300, pingTimeout: 300 });
    const silent = await rawClient(s.url);
    const open = JSON.parse(silent.frames[0]!.slice(1)) as Record<string, unknown>;
    assert.equal(silent.frames[0]![0], '0');
    assert.equal(open['pingInterval'], 300);
    assert.equal(open['pingTimeout'], 300);
    assert.deepEqual(open['upgrades'], []);
    silent.ws.send('40');
    await eventually(() => silent.frames.some((f) => f.startsWith('40{"sid":')), 3000, 'socket.io connect');

    const lively = await connect(s.url);
    let dropped = false;
    lively.on('disconnect', () => (dropped = true));
    // The silent client gets pings, never answers, and is closed.
    await Promise.race([silent.closed, new Promise((_, reject) => setTimeout(() => reject(new Error('not dropped')), 5000))]);
    assert.ok(silent.frames.includes('2'), 'the server pinged');
    // socket.io-client answers: still connected, and still served, after several intervals.
    await new Promise((r) => setTimeout(r, 1200));
    assert.equal(dropped, false);
    assert.equal((await request<{ ok: boolean }>(lively, 'share', 'dw-lively')).ok, true);
  });

  it('drops a websocket that never connects to a namespace', async () => {
    const s = await server({ pingInterval: 300, pingTimeout: 300 });
    const idle = await rawClient(s.url);
    await idle.closed;
    await eventually(() => s.connections === 0, 2000, 'the connection to be forgotten');
  });

  it('answers other namespaces as socket.io does and keeps the connection', async () => {
    const s = await server();
    const raw = await rawClient(s.url);
    raw.ws.send('40/admin,');
    await eventually(() => raw.frames.length > 1, 3000, 'the refusal');
    assert.equal(raw.frames[1], '44/admin,{"message":"Invalid namespace"}');
    raw.ws.send('40');
    await eventually(() => raw.frames.length > 2, 3000, 'the connect');
    assert.match(raw.frames[2]!, /^40\{"sid":"[\w-]{20}"\}$/);
    // An event with an ack, by hand: the ack carries the same id.
    raw.ws.send('427["share","dw-raw"]');
    await eventually(() => raw.frames.length > 3, 3000, 'the ack');
    assert.match(raw.frames[3]!, /^437\[\{"ok":true,"name":"dw-raw",/);
    // An event packet without data is, as for socket.io, an event nobody listens to: dropped, the connection kept.
    raw.ws.send('42');
    raw.ws.send('428["share","dw-raw-2"]');
    await eventually(() => raw.frames.length > 4, 3000, 'the second ack');
    assert.match(raw.frames[4]!, /^438\[\{"ok":true,"name":"dw-raw-2",/);
    // A relayed message arrives as the JSON text it was sent in, in both directions.
    const joiner = await rawClient(s.url);
    joiner.ws.send('40');
    await eventually(() => joiner.frames.length > 1, 3000, 'the joiner connect');
    const message = '{"type":"offer","sdp":"v=0\\r\\no=- 1 2 IN IP4 192.0.2.1\\r\\n","n":[1,2.5,null,true]}';
    joiner.ws.send(`42["launch","dw-raw","uid \\"1\\"",${message}]`);
    await eventually(() => raw.frames.length > 5, 3000, 'the launchResponse');
    assert.equal(raw.frames[5], `42["launchResponse","uid \\"1\\"",${message}]`);
    raw.ws.send('42["answer","uid \\"1\\"","plain text \\u00e9"]');
    await eventually(() => joiner.frames.length > 2, 3000, 'the answerResponse');
    assert.equal(joiner.frames[2], '42["answerResponse","plain text \\u00e9"]');
    joiner.ws.close();
    raw.ws.close();
  });

  it('closes a connection that sends an event before connecting, and nobody else notices', async () => {
    const s = await server();
    const bystander = await connect(s.url);
    const raw = await rawClient(s.url);
    raw.ws.send('42["share","dw-early"]');
    await raw.closed;
    assert.equal(bystander.connected, true);
    assert.equal((await request<{ ok: boolean }>(bystander, 'share', 'dw-early')).ok, true);
  });

  it('closes a connection that breaks the engine.io or socket.io framing, and only that one', async () => {
    const s = await server();
    const bystander = await connect(s.url);
    const cases: [string, (ws: WebSocket) => void][] = [
      ['a binary frame with no binary packet waiting for it', (ws) => ws.send(Buffer.from([1, 2, 3]))],
      ['an unknown engine.io packet type', (ws) => ws.send('9hello')],
      ['a ping from the client (engine.io v4: only the server pings)', (ws) => ws.send('2')],
      ['text while a binary packet waits for its attachment', (ws) => {
        ws.send('451-["launch","dw-bin","u",{"_placeholder":true,"num":0}]');
        ws.send('42["share","dw-bin"]');
      }],
      ['a socket.io packet that is not JSON', (ws) => ws.send('42["share",')],
    ];
    for (const [label, send] of cases) {
      const raw = await rawClient(s.url);
      raw.ws.send('40');
      await eventually(() => raw.frames.some((f) => f.startsWith('40{')), 3000, `connect (${label})`);
      send(raw.ws);
      await Promise.race([raw.closed, new Promise((_, reject) => setTimeout(() => reject(new Error(`not closed: ${label}`)), 3000))]);
    }
    assert.equal(bystander.connected, true);
    assert.equal((await request<{ ok: boolean }>(bystander, 'share', 'dw-framing')).ok, true);
    await eventually(() => s.connections === 1, 3000, 'only the bystander left');
  });

  it('closes its connections on shutdown', async () => {
    const s = await startTestServer();
    const client = await connect(s.url);
    const reason = waitFor<[string]>(client, 'disconnect', 5000);
    await s.close();
    assert.equal((await reason)[0], 'transport close');
  });
});

/** A client frame, masked as a client must: FIN unless `fin` is false, then the opcode. */
function clientFrame(opcode: number, payload: Buffer | string, fin = true): Buffer {
  const data = typeof payload === 'string' ? Buffer.from(payload) : payload;
  const mask = randomBytes(4);
  const head = data.length < 126 ? Buffer.from([(fin ? 0x80 : 0) | opcode, 0x80 | data.length]) : Buffer.from([(fin ? 0x80 : 0) | opcode, 0x80 | 126, data.length >> 8, data.length & 0xff]);
  const body = Buffer.alloc(data.length);
  for (let i = 0; i < data.length; i++) body[i] = data[i]! ^ mask[i % 4]!;
  return Buffer.concat([head, mask, body]);
}

describe('direct websocket engine: frames from the TCP socket', () => {
  afterEach(() => disconnectAll());
  after(async () => {
    for (const s of servers) await s.close();
  });

  /** A raw client connected to the main namespace, the server's side of its TCP connection, and its TCP socket to write bytes on. */
  async function connected(s: RunningServer): Promise<{ client: Awaited<ReturnType<typeof rawClient>>; serverTcp: TcpSocket; write(bytes: Buffer): void; closeCode: Promise<number> }> {
    const upgraded: TcpSocket[] = [];
    const onUpgrade = (_req: unknown, tcp: TcpSocket): void => void upgraded.push(tcp);
    s.io.httpServer.on('upgrade', onUpgrade);
    const client = await rawClient(s.url);
    s.io.httpServer.off('upgrade', onUpgrade);
    const closeCode = new Promise<number>((resolve) => client.ws.on('close', (code) => resolve(code)));
    client.ws.send('40');
    await eventually(() => client.frames.some((f) => f.startsWith('40{"sid":')), 3000, 'socket.io connect');
    const tcp = (client.ws as unknown as { _socket: TcpSocket })._socket;
    return { client, serverTcp: upgraded[0]!, write: (bytes) => tcp.write(bytes), closeCode };
  }

  const acked = (frames: string[], id: number): boolean => frames.some((f) => f.startsWith(`43${id}[{"ok":true`));

  it("hands what the TCP socket reads to ws's receiver itself, not through Writable.write", async () => {
    // Depends on ws internals: fails when a ws version stops matching, so the saving is not lost unnoticed.
    const s = await server();
    const { serverTcp, client } = await connected(s);
    assert.deepEqual(
      serverTcp.listeners('data').map((listener) => listener.name),
      ['onData'],
      "ws's socketOnData replaced by the engine's own listener",
    );
    client.ws.send('421["share","tcp-own"]');
    await eventually(() => acked(client.frames, 1), 3000, 'the share acked');
  });

  it('reads frames whole however TCP joins or splits them, and fragmented messages', async () => {
    const s = await server();
    const { client, write } = await connected(s);
    // Two frames in one write.
    write(Buffer.concat([clientFrame(1, '421["share","tcp-a"]'), clientFrame(1, '422["share","tcp-b"]')]));
    await eventually(() => acked(client.frames, 1) && acked(client.frames, 2), 3000, 'both shares acked');
    // One frame over three writes, a turn of the event loop apart.
    const split = clientFrame(1, `423["launch","tcp-a","u1",${JSON.stringify('x'.repeat(300))}]`);
    for (const [from, to] of [[0, 1], [1, 7], [7, split.length]] as const) {
      write(split.subarray(from, to));
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    await eventually(() => acked(client.frames, 3), 3000, 'the split launch acked');
    // A message in three fragments: text, continuation, final continuation.
    write(Buffer.concat([clientFrame(1, '424["sh', false), clientFrame(0, 'are","tc', false), clientFrame(0, 'p-c"]')]));
    await eventually(() => acked(client.frames, 4), 3000, 'the fragmented share acked');
    assert.ok(client.frames.some((f) => f.startsWith('42["launchResponse","u1"')), 'the sharer (itself) got the launch');
  });

  it('closes a connection that sends invalid UTF-8 with 1007, and only that one', async () => {
    const s = await server();
    const other = await connect(s.url);
    const { write, closeCode } = await connected(s);
    write(clientFrame(1, Buffer.from([0x34, 0x32, 0xff, 0xfe])));
    assert.equal(await closeCode, 1007);
    assert.equal((await request<{ ok: boolean }>(other, 'share', 'tcp-other')).ok, true);
  });

  it('ends a connection on its close frame and reads nothing after it', async () => {
    const s = await server();
    const { client, write, closeCode } = await connected(s);
    const close = Buffer.alloc(2);
    close.writeUInt16BE(1000);
    write(Buffer.concat([clientFrame(8, close), clientFrame(1, '425["share","tcp-late"]')]));
    assert.equal(await closeCode, 1000);
    assert.equal(acked(client.frames, 5), false, 'the frame after the close frame was not read');
    await eventually(() => s.connections === 0, 3000, 'the connection to be forgotten');
  });
});
