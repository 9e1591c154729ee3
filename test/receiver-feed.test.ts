/**
 * The direct engine's frame reading (src/server/receiver-feed.ts) against
 * ws's own Receiver: the same bytes, cut the same way, sent to a ws server
 * whose connections are fed by `feedReceiver` and to a stock one, must
 * bring the same messages, in order, and the same end (error code, close
 * code). The frames are random: text of every length class, binary,
 * fragments, pings, and the ones ws refuses (bad UTF-8, unmasked, over the
 * payload limit, reserved bits).
 * @module
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect, type AddressInfo, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { setImmediate as turn } from 'node:timers/promises';
import fc from 'fast-check';
import { WebSocketServer, type WebSocket } from 'ws';
import { feedReceiver, readsTextFrames, type MessageListener } from '../src/server/receiver-feed.js';

const MAX_PAYLOAD = 3000;

interface Outcome {
  messages: string[];
  error?: string | undefined;
  close?: number | undefined;
}

/** What a server saw on each connection, in connection order. */
class Recorder {
  readonly outcomes: Outcome[] = [];
  readonly done: Promise<void>[] = [];
  readonly fed: boolean[] = [];

  constructor(readonly server: WebSocketServer, feed: boolean) {
    server.on('connection', (ws: WebSocket) => {
      const outcome: Outcome = { messages: [] };
      this.outcomes.push(outcome);
      const listener: MessageListener = function (data, isBinary) {
        outcome.messages.push(`${isBinary ? 'binary' : 'text'} ${Buffer.from(data).toString('hex')}`);
      };
      ws.on('message', listener);
      ws.on('error', (error: Error & { code?: string }) => (outcome.error = error.code));
      this.done.push(new Promise((resolve) => ws.on('close', (code) => resolve(void (outcome.close = code)))));
      this.fed.push(feed && feedReceiver(ws, listener) && readsTextFrames(ws));
    });
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }
}

async function listening(feed: boolean): Promise<Recorder> {
  const server = new WebSocketServer({ host: '127.0.0.1', port: 0, allowSynchronousEvents: true, perMessageDeflate: false, maxPayload: MAX_PAYLOAD });
  await once(server, 'listening');
  return new Recorder(server, feed);
}

/** A TCP connection that has done the websocket opening handshake by hand. */
async function upgraded(port: number): Promise<Socket> {
  const tcp = connect(port, '127.0.0.1');
  await once(tcp, 'connect');
  tcp.write(
    'GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
      'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
  );
  let head = '';
  while (!head.includes('\r\n\r\n')) head += String((await once(tcp, 'data'))[0]);
  assert.match(head, /^HTTP\/1.1 101/);
  tcp.on('data', () => {});
  tcp.on('error', () => {});
  return tcp;
}

interface FrameSpec {
  opcode: number;
  payload: Uint8Array;
  fin: boolean;
  masked: boolean;
  rsv: number;
  /** Write the length in 16 bits even below 126. */
  wide: boolean;
  key: Uint8Array;
}

function encode(spec: FrameSpec): Buffer {
  const length = spec.payload.length;
  const wide = spec.wide || length >= 126;
  const head = Buffer.alloc(2 + (wide ? 2 : 0) + (spec.masked ? 4 : 0));
  head[0] = (spec.fin ? 0x80 : 0) | (spec.rsv << 4) | spec.opcode;
  head[1] = (spec.masked ? 0x80 : 0) | (wide ? 126 : length);
  if (wide) head.writeUInt16BE(length, 2);
  const body = Buffer.from(spec.payload);
  if (spec.masked) {
    head.set(spec.key, head.length - 4);
    for (let i = 0; i < body.length; i++) body[i]! ^= spec.key[i & 3]!;
  }
  return Buffer.concat([head, body]);
}

const key = fc.uint8Array({ minLength: 4, maxLength: 4 });
const utf8 = (maxLength: number): fc.Arbitrary<Uint8Array> => fc.string({ unit: 'binary', maxLength }).map((s) => Buffer.from(s));
const plain = { fin: true, masked: true, rsv: 0, wide: false };

/** The frames a client may send, mostly good ones. */
const frames: fc.Arbitrary<FrameSpec[]> = fc.oneof(
  { weight: 8, arbitrary: fc.record({ payload: fc.oneof(utf8(100), utf8(2000)), key, wide: fc.boolean() }).map((f) => [{ ...plain, ...f, opcode: 1 }]) },
  { weight: 1, arbitrary: fc.record({ payload: fc.uint8Array({ maxLength: 300 }), key }).map((f) => [{ ...plain, ...f, opcode: 2 }]) },
  {
    weight: 1,
    arbitrary: fc.record({ parts: fc.array(utf8(50), { minLength: 2, maxLength: 3 }), key, ping: fc.boolean() }).map(({ parts, key, ping }) => {
      const list: FrameSpec[] = parts.map((payload, i) => ({ ...plain, payload, key, opcode: i === 0 ? 1 : 0, fin: i === parts.length - 1 }));
      if (ping) list.splice(1, 0, { ...plain, payload: Buffer.from('p'), key, opcode: 9 });
      return list;
    }),
  },
  { weight: 1, arbitrary: fc.record({ payload: fc.uint8Array({ maxLength: 20 }), key }).map((f) => [{ ...plain, ...f, opcode: 9 }]) },
  // What ws refuses.
  {
    weight: 1,
    arbitrary: fc.record({ first: utf8(30), inside: utf8(30), key }).map(({ first, inside, key }) => [
      { ...plain, payload: first, key, opcode: 1, fin: false },
      { ...plain, payload: inside, key, opcode: 1 },
    ]),
  },
  // Bad UTF-8 (continuation bytes alone) that is ASCII as it travels, masked:
  // unmasked twice it would pass.
  {
    weight: 1,
    arbitrary: fc.record({ ascii: fc.uint8Array({ minLength: 1, maxLength: 40 }), low: key }).map(({ ascii, low }) => {
      const k = low.map((b) => 0x80 | (b & 0x1f));
      return [{ ...plain, payload: ascii.map((b, i) => (0x20 | (b & 0x3f)) ^ k[i & 3]!), key: k, opcode: 1 }];
    }),
  },
  { weight: 1, arbitrary: utf8(30).map((payload) => [{ ...plain, payload, key: new Uint8Array(4), masked: false, opcode: 1 }]) },
  { weight: 1, arbitrary: key.map((k) => [{ ...plain, payload: Buffer.alloc(MAX_PAYLOAD + 1, 0x61), key: k, opcode: 1 }]) },
  { weight: 1, arbitrary: fc.record({ payload: utf8(30), key, rsv: fc.integer({ min: 1, max: 7 }) }).map((f) => [{ ...plain, ...f, opcode: 1 }]) },
);

describe('reading text frames ahead of ws’s receiver', () => {
  let fast: Recorder;
  let stock: Recorder;
  before(async () => {
    [fast, stock] = await Promise.all([listening(true), listening(false)]);
  });
  after(async () => {
    for (const recorder of [fast, stock]) {
      for (const ws of recorder.server.clients) ws.terminate();
      await new Promise((resolve) => recorder.server.close(resolve));
    }
  });

  it('gives the messages and the end ws gives, however the bytes are cut', async () => {
    // Cuts anywhere, or between two frames (where a read often ends).
    const cut = fc.oneof(fc.record({ byte: fc.nat(6000) }), fc.record({ frame: fc.nat(40) }));
    await fc.assert(
      fc.asyncProperty(fc.array(frames, { maxLength: 12 }), fc.array(cut, { maxLength: 8 }), async (groups, cuts) => {
        const encoded = [...groups.flat().map(encode), encode({ ...plain, payload: Buffer.from('end'), key: new Uint8Array([1, 2, 3, 4]), opcode: 1 })];
        const bytes = Buffer.concat(encoded);
        const boundaries = encoded.map((_, i) => encoded.slice(0, i + 1).reduce((sum, f) => sum + f.length, 0));
        const offsets = cuts.map((c) => ('byte' in c ? c.byte % (bytes.length + 1) : boundaries[c.frame % boundaries.length]!));
        const points = [...new Set(offsets)].sort((a, b) => a - b);
        const seen: Outcome[] = [];
        for (const recorder of [fast, stock]) {
          const tcp = await upgraded(recorder.port);
          let from = 0;
          for (const to of [...points, bytes.length]) {
            tcp.write(bytes.subarray(from, to));
            from = to;
            await turn();
          }
          const index = recorder.outcomes.length - 1;
          const outcome = recorder.outcomes[index]!;
          const ended = `text ${Buffer.from('end').toString('hex')}`;
          // Done when the last frame arrived or the connection ended.
          let closed = false;
          void recorder.done[index]!.then(() => (closed = true));
          while (!closed && outcome.messages.at(-1) !== ended) await new Promise((resolve) => setTimeout(resolve, 2));
          tcp.destroy();
          await recorder.done[index];
          seen.push(outcome);
        }
        // The close code of a connection the client dropped is 1006 on both.
        assert.deepEqual(seen[0], seen[1]);
      }),
      { numRuns: Number(process.env.RUNS ?? 150) },
    );
    assert.ok(fast.fed.length > 0 && fast.fed.every(Boolean), 'every connection of the fed server read its text frames ahead of the receiver');
  });
});
