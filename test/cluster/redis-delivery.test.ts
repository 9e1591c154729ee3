/**
 * RedisDelivery between in-process nodes on a real redis-server: the text
 * frames of one turn (relays and notifications) ride to each node in one
 * PUBLISH, in order; malformed batch frames are dropped from the damage on.
 * @module
 */
import assert from 'node:assert/strict';
import { after, afterEach, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { mintNodeId, socketIdPrefix } from '../../src/cluster/node-id.js';
import { encodeBatch, encodeTextFrame, RedisDelivery } from '../../src/cluster/redis-delivery.js';
import { RawJson } from '../../src/core/raw-json.js';
import type { DeliveryMessage } from '../../src/core/types.js';
import { startRedis, type TestRedis } from '../support/redis.js';
import { eventually } from '../support/util.js';

interface Node {
  delivery: RedisDelivery;
  id(local: string): string;
  got: [string, DeliveryMessage][];
  drops: string[];
}

describe('RedisDelivery', () => {
  let server: TestRedis;
  let admin: Redis;
  let clients: Redis[] = [];
  let round = 0;

  async function node(prefix: string): Promise<Node> {
    const options = { enableOfflineQueue: false, commandTimeout: 1000, maxRetriesPerRequest: 0, lazyConnect: true };
    const publisher = new Redis(server.url, options);
    const nodeId = mintNodeId();
    const subscriber = new Redis(server.url, { ...options, enableOfflineQueue: true, connectionName: `sub-${nodeId}` });
    clients.push(publisher, subscriber);
    for (const c of [publisher, subscriber]) c.on('error', () => undefined);
    await Promise.all([publisher.connect(), subscriber.connect()]);
    const made: Node = { delivery: undefined!, id: (local) => `${socketIdPrefix(nodeId)}${local}`, got: [], drops: [] };
    made.delivery = new RedisDelivery({ publisher, subscriber, nodeId, prefix, onDrop: (reason) => made.drops.push(reason) });
    made.delivery.onMessage((target, message) => made.got.push([target, message]));
    await made.delivery.start();
    return made;
  }

  const publishes = async (): Promise<number> => {
    const info = await admin.info('commandstats');
    return Number(/cmdstat_publish:calls=(\d+)/.exec(info)?.[1] ?? 0);
  };

  before(async () => {
    server = await startRedis();
    admin = server.client();
  });
  afterEach(() => {
    for (const c of clients) c.disconnect();
    clients = [];
  });
  after(async () => {
    await server.stop();
  });

  it('is listening only while its subscriber is subscribed: not after its connection is cut, again once re-subscribed', async () => {
    const prefix = `del${++round}:`;
    const [a, b] = [await node(prefix), await node(prefix)];
    assert.equal(b.delivery.listening, true);
    const subscriber = clients[clients.length - 1]!;
    const cut = new Promise<void>((resolve) => subscriber.once('close', () => resolve()));
    // Cut b's subscriber from the server side, as a Redis restart would.
    const line = String(await admin.client('LIST'))
      .split('\n')
      .find((l) => l.includes(` name=sub-${b.delivery.nodeId} `));
    assert.ok(line, 'the subscriber is connected');
    await admin.client('KILL', 'ID', /id=(\d+)/.exec(line)![1]!);
    await cut;
    assert.equal(b.delivery.listening, false);
    await eventually(() => b.delivery.listening, 5000, 'listening again');
    // Once listening, what is published to it arrives.
    a.delivery.send(b.id('s'), { kind: 'joiner-gone', name: 'n', uid: 'u', joiner: a.id('j') });
    await eventually(() => b.got.length === 1, 5000, 'delivered after the reconnect');
  });

  it('sends an evicting launch and its joiner-gone in one PUBLISH, joiner-gone first', async () => {
    const prefix = `del${++round}:`;
    const [a, b] = [await node(prefix), await node(prefix)];
    const joiner = a.id('j');
    const sharer = b.id('s');
    const before = await publishes();
    // Multi-byte text on both sides of the batch's lengths.
    const name = 'n:日本語🙂';
    a.delivery.send(sharer, { kind: 'joiner-gone', name, uid: 'old', joiner });
    a.delivery.send(sharer, { kind: 'launch', name, uid: 'new', joiner, message: new RawJson('{"sdp":"o\\r\\n","é":"🙂"}'), sentAt: 1 });
    await eventually(() => b.got.length === 2, 5000, 'both delivered');
    assert.equal((await publishes()) - before, 1);
    assert.deepEqual(
      b.got.map(([t, m]) => [t, m.kind, m.name, m.uid]),
      [
        [sharer, 'joiner-gone', name, 'old'],
        [sharer, 'launch', name, 'new'],
      ],
    );
    const launch = b.got[1]![1] as Extract<DeliveryMessage, { kind: 'launch' }>;
    assert.deepEqual((launch.message as RawJson).value, { sdp: 'o\r\n', é: '🙂' });
    assert.deepEqual(a.drops.concat(b.drops), []);
  });

  it('sends held notifications at the end of the task, and keeps the order per node with relays', async () => {
    const prefix = `del${++round}:`;
    const [a, b, c] = [await node(prefix), await node(prefix), await node(prefix)];
    const before = await publishes();
    const x = a.id('x');
    // To b: a structured-clone relay alone; two notifications that a JSON relay takes along; one
    // notification sent just before a binary relay (which cannot join a text batch); a last one.
    a.delivery.send(b.id('s'), { kind: 'answer', name: 'n', uid: 'u0', sharer: x, message: 'plain', sentAt: 1 });
    for (const uid of ['u1', 'u2']) a.delivery.send(b.id('s'), { kind: 'sharer-gone', name: 'n', uid, sharer: x });
    a.delivery.send(c.id('s'), { kind: 'joiner-gone', name: 'n', uid: 'c1', joiner: x });
    a.delivery.send(b.id('s'), { kind: 'answer', name: 'n', uid: 'u3', sharer: x, message: new RawJson('"json"'), sentAt: 1 });
    a.delivery.send(b.id('s'), { kind: 'sharer-gone', name: 'n', uid: 'u4', sharer: x });
    a.delivery.send(b.id('s'), { kind: 'answer', name: 'n', uid: 'u5', sharer: x, message: { binary: Buffer.from([0, 255]) }, sentAt: 1 });
    a.delivery.send(b.id('s'), { kind: 'sharer-gone', name: 'n', uid: 'u6', sharer: x });
    await eventually(() => b.got.length === 7 && c.got.length === 1, 5000, 'all delivered');
    // b: u0 (a node:v8 frame, alone); u1+u2+u3+u4 (held until the binary u5 went); u5; u6 (end of
    // the turn); c: its one (end of the turn).
    assert.equal((await publishes()) - before, 5);
    assert.deepEqual(
      b.got.map(([, m]) => `${m.kind}:${m.uid}`),
      ['answer:u0', 'sharer-gone:u1', 'sharer-gone:u2', 'answer:u3', 'sharer-gone:u4', 'answer:u5', 'sharer-gone:u6'],
    );
    assert.deepEqual(b.got[1], [b.id('s'), { kind: 'sharer-gone', name: 'n', uid: 'u1', sharer: x }]);
    assert.deepEqual((b.got[5]![1] as { message: unknown }).message, { binary: Buffer.from([0, 255]) });
    assert.deepEqual(c.got, [[c.id('s'), { kind: 'joiner-gone', name: 'n', uid: 'c1', joiner: x }]]);
    assert.deepEqual(a.drops.concat(b.drops, c.drops), []);
  });

  it('sends the relays and notifications of one turn to a node in one PUBLISH, in order', async () => {
    const prefix = `del${++round}:`;
    const [a, b, c] = [await node(prefix), await node(prefix), await node(prefix)];
    const before = await publishes();
    const x = a.id('x');
    for (let i = 0; i < 5; i++) {
      a.delivery.send(b.id('s'), { kind: 'launch', name: 'n', uid: `u${i}`, joiner: x, message: new RawJson(`{"offer":${i}}`), sentAt: 1 });
      a.delivery.send(c.id('s'), { kind: 'answer', name: 'n', uid: `u${i}`, sharer: x, message: new RawJson(`"answer-${i}"`), sentAt: 1 });
    }
    a.delivery.send(b.id('s'), { kind: 'joiner-gone', name: 'n', uid: 'u0', joiner: x });
    await eventually(() => b.got.length === 6 && c.got.length === 5, 5000, 'all delivered');
    assert.equal((await publishes()) - before, 2);
    assert.deepEqual(
      b.got.map(([, m]) => `${m.kind}:${m.uid}`),
      ['launch:u0', 'launch:u1', 'launch:u2', 'launch:u3', 'launch:u4', 'joiner-gone:u0'],
    );
    assert.deepEqual(
      c.got.map(([, m]) => (m as { message: RawJson }).message.value),
      ['answer-0', 'answer-1', 'answer-2', 'answer-3', 'answer-4'],
    );
    assert.deepEqual(a.drops.concat(b.drops, c.drops), []);
  });

  it('splits a long run of notifications into bounded batches, in order', async () => {
    const prefix = `del${++round}:`;
    const [a, b] = [await node(prefix), await node(prefix)];
    const before = await publishes();
    for (let i = 0; i < 600; i++) a.delivery.send(b.id('j'), { kind: 'sharer-gone', name: 'n', uid: `u${i}`, sharer: a.id('s') });
    await eventually(() => b.got.length === 600, 5000, 'all delivered');
    assert.deepEqual(
      b.got.map(([, m]) => m.uid),
      Array.from({ length: 600 }, (_, i) => `u${i}`),
    );
    const sent = (await publishes()) - before;
    assert.ok(sent > 1 && sent <= 6, `${sent} publishes`);
  });

  it('carries every kind with its fields intact, awkward names and uids included', async () => {
    const prefix = `del${++round}:`;
    const [a, b] = [await node(prefix), await node(prefix)];
    const x = a.id('x');
    const t = b.id('t');
    // Field separators and digits inside the fields; a lone surrogate (not UTF-8 encodable: node:v8 frame).
    const names = ['12:34;5', 'n\n;9:', 'ü🙂:3', 'lone\ud800'];
    const sent: DeliveryMessage[] = [];
    for (const name of names) {
      const uid = `${name}|u`;
      sent.push(
        { kind: 'launch', name, uid, joiner: x, message: new RawJson('{"sdp":"v=0\\r\\n;1:2"}'), sentAt: 1_764_000_000_123.5 },
        { kind: 'answer', name, uid, sharer: x, message: new RawJson('"ok"'), sentAt: 7 },
        { kind: 'sharer-gone', name, uid, sharer: x },
        { kind: 'joiner-gone', name, uid, joiner: x },
      );
    }
    for (const m of sent) a.delivery.send(t, m);
    await eventually(() => b.got.length === sent.length, 5000, 'all delivered');
    // A node:v8 frame delivers a JSON payload as its value, a text frame as a RawJson.
    const plain = (m: DeliveryMessage): unknown => ('message' in m && m.message instanceof RawJson ? { ...m, message: m.message.value } : m);
    assert.deepEqual(
      b.got.map(([target, m]) => [target, plain(m)]),
      sent.map((m) => [t, plain(m)]),
    );
    assert.equal(encodeTextFrame(a.delivery.nodeId, t, sent[12]!), undefined, 'a lone surrogate takes the node:v8 frame');
    assert.deepEqual(a.drops.concat(b.drops), []);
  });

  it('drops a text frame that does not decode, and delivers the rest of its batch', async () => {
    const prefix = `del${++round}:`;
    const [a, b] = [await node(prefix), await node(prefix)];
    const from = a.delivery.nodeId;
    const t = b.id('t');
    const good = (uid: string): string => encodeTextFrame(from, t, { kind: 'answer', name: 'n', uid, sharer: a.id('s'), message: new RawJson('1'), sentAt: 1 })!;
    const gone = encodeTextFrame(from, t, { kind: 'sharer-gone', name: 'n', uid: 'u', sharer: a.id('s') })!;
    const bad = [
      good('k').replace('Ra', 'Rx'), // unknown kind
      good('k').replace('1;1', 'z;1'), // sentAt not a number
      good('k').replace('1;1', '1'), // no end of sentAt
      `${gone}tail`, // a notification with more after its fields
      gone.slice(0, -1), // a field cut short
      good('k').replace(/^Ra\d+/, 'Ra'), // a field without its length
    ];
    await admin.publish(`${prefix}deliver:${b.delivery.nodeId}`, encodeBatch([good('g1'), ...bad, good('g2')]));
    await eventually(() => b.got.length === 2 && b.drops.length === bad.length, 5000, 'delivered and dropped');
    assert.deepEqual(b.got.map(([, m]) => m.uid), ['g1', 'g2']);
    assert.deepEqual(new Set(b.drops), new Set(['undecodable frame']));
  });

  it('drops a damaged batch from the damage on, and a nested batch', async () => {
    const prefix = `del${++round}:`;
    const [a, b] = [await node(prefix), await node(prefix)];
    // Frames as a node makes them, taken off the wire of a real send.
    const spy = new Redis(server.url);
    clients.push(spy);
    const frames: Buffer[] = [];
    spy.on('messageBuffer', (_channel: Buffer, data: Buffer) => frames.push(data));
    await spy.subscribe(`${prefix}deliver:${b.delivery.nodeId}`);
    const good = (uid: string): void => a.delivery.send(b.id('j'), { kind: 'answer', name: 'n', uid, sharer: a.id('s'), message: new RawJson('1'), sentAt: 1 });
    // In turns of their own: relays of one turn would travel as one batch.
    good('g1');
    await eventually(() => frames.length === 1 && b.got.length === 1, 5000, 'first frame seen');
    good('g2');
    await eventually(() => frames.length === 2 && b.got.length === 2, 5000, 'frames seen');
    const [f1, f2] = frames.map((f) => f.toString()) as [string, string];
    const batch = encodeBatch([f1, f2]);
    const channel = `${prefix}deliver:${b.delivery.nodeId}`;
    b.got.length = 0;
    await admin.publish(channel, batch.slice(0, -3));
    await admin.publish(channel, encodeBatch([encodeBatch([f1]), f2]));
    await eventually(() => b.drops.length === 2 && b.got.length === 2, 5000, 'drops');
    // The truncated batch delivers its intact first frame; the nested one is dropped, the frame after it delivered.
    assert.deepEqual(b.got.map(([, m]) => m.uid), ['g1', 'g2']);
    assert.deepEqual(b.drops, ['undecodable frame', 'undecodable frame']);
  });
});
