/**
 * Direct node links (src/cluster/node-links.ts) between in-process nodes on
 * a real redis-server: once a link is up, relays stop going through Redis;
 * across the switch from Redis to a link, and back after a link is closed,
 * messages from one node to another keep their order and none is lost; a
 * connection without the right token, or without its marker, never
 * delivers anything.
 * @module
 */
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { after, afterEach, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { encodeLinkFrame, LinkFrameReader } from '../../src/cluster/link-frames.js';
import { mintNodeId, socketIdPrefix } from '../../src/cluster/node-id.js';
import { encodeTextFrame, RedisDelivery } from '../../src/cluster/redis-delivery.js';
import { RawJson } from '../../src/core/raw-json.js';
import type { DeliveryMessage } from '../../src/core/types.js';
import { startRedis, type TestRedis } from '../support/redis.js';
import { eventually, sleep } from '../support/util.js';

interface Node {
  delivery: RedisDelivery;
  id(local: string): string;
  got: [string, DeliveryMessage][];
  drops: string[];
}

const launch = (joiner: string, uid: string): DeliveryMessage => ({
  kind: 'launch',
  name: 'n',
  uid,
  joiner,
  message: new RawJson(`{"sdp":"v=0\\r\\n${uid}"}`),
  sentAt: 1,
});

describe('node links', () => {
  let server: TestRedis;
  let admin: Redis;
  let clients: Redis[] = [];
  let nodes: Node[] = [];
  let sockets: Socket[] = [];
  let round = 0;

  async function node(prefix: string, links = true): Promise<Node> {
    const options = { enableOfflineQueue: false, commandTimeout: 1000, maxRetriesPerRequest: 0, lazyConnect: true };
    const publisher = new Redis(server.url, options);
    const subscriber = new Redis(server.url, { ...options, enableOfflineQueue: true });
    clients.push(publisher, subscriber);
    for (const c of [publisher, subscriber]) c.on('error', () => undefined);
    await Promise.all([publisher.connect(), subscriber.connect()]);
    const nodeId = mintNodeId();
    const made: Node = { delivery: undefined!, id: (local) => `${socketIdPrefix(nodeId)}${local}`, got: [], drops: [] };
    made.delivery = new RedisDelivery({
      publisher,
      subscriber,
      nodeId,
      prefix,
      onDrop: (reason) => made.drops.push(reason),
      links: links ? { host: '127.0.0.1', port: 0 } : undefined,
    });
    made.delivery.onMessage((target, message) => made.got.push([target, message]));
    await made.delivery.start();
    nodes.push(made);
    return made;
  }

  const publishes = async (): Promise<number> => {
    const info = await admin.info('commandstats');
    return Number(/cmdstat_publish:calls=(\d+)/.exec(info)?.[1] ?? 0);
  };

  /**
   * Sends one launch from a to b per turn of the event loop, `count` of
   * them, from uid `from` on, with a 1 ms pause every 10: 300 take some
   * 30 ms, long enough for a to dial b (a Redis round trip and a TCP
   * connect) halfway through, however fast the turns.
   */
  async function stream(a: Node, b: Node, from: number, count: number): Promise<void> {
    for (let i = from; i < from + count; i++) {
      a.delivery.send(b.id('s'), launch(a.id('j'), `u${i}`));
      await new Promise((resolve) => (i % 10 === 9 ? setTimeout(resolve, 1) : setImmediate(resolve)));
    }
  }

  const uids = (n: Node): string[] => n.got.map(([, m]) => m.uid);
  const range = (count: number): string[] => Array.from({ length: count }, (_, i) => `u${i}`);

  /** A raw TCP connection to b's link port. */
  async function dialRaw(b: Node): Promise<Socket> {
    const address = b.delivery.linkAddress!;
    const socket = connect({ host: address.address, port: address.port });
    sockets.push(socket);
    socket.on('error', () => undefined);
    await new Promise((resolve) => socket.once('connect', resolve));
    return socket;
  }

  /** Resolves when b has closed `socket`; fails after `ms`. */
  /** Asks b over Redis where it listens, as a dialing node does, and returns the token it answers with. */
  async function tokenOf(prefix: string, b: Node): Promise<string> {
    const asker = server.client();
    clients.push(asker);
    await asker.subscribe(`${prefix}deliver:asker`);
    const answer = new Promise<string>((resolve) => asker.once('message', (_channel: string, text: string) => resolve(text)));
    await admin.publish(`${prefix}deliver:${b.delivery.nodeId}`, 'Qasker');
    const [node, host, port, token] = (await answer).slice(1).split(' ');
    const address = b.delivery.linkAddress!;
    assert.deepEqual([node, host, Number(port)], [b.delivery.nodeId, address.address, address.port]);
    return token!;
  }

  const closed = (socket: Socket, ms = 7000): Promise<void> =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('the link was left open')), ms);
      socket.once('close', () => {
        clearTimeout(timer);
        resolve();
      });
      if (socket.closed) socket.emit('close');
    });

  before(async () => {
    server = await startRedis();
    admin = server.client();
  });
  afterEach(async () => {
    for (const n of nodes) await n.delivery.close();
    for (const s of sockets) s.destroy();
    for (const c of clients) c.disconnect();
    nodes = [];
    sockets = [];
    clients = [];
  });
  after(async () => {
    await server.stop();
  });

  it('frames its link frames back whatever the chunks, and refuses a frame over its limit', () => {
    const frames = ['R', 'é🙂'.repeat(300), ''].map((f) => encodeLinkFrame(f));
    frames.push(encodeLinkFrame(Buffer.from([0xff, 0, 1])));
    const wire = Buffer.concat(frames);
    for (const size of [1, 3, 5, 7, 1000, wire.length]) {
      const reader = new LinkFrameReader(1 << 20);
      const got: string[] = [];
      for (let at = 0; at < wire.length; at += size) assert.equal(reader.push(wire.subarray(at, at + size), (f) => got.push(f.toString('hex'))), true);
      assert.deepEqual(got, frames.map((f) => f.subarray(4).toString('hex')), `chunks of ${size}`);
    }
    const small = new LinkFrameReader(10);
    const seen: Buffer[] = [];
    assert.equal(small.push(encodeLinkFrame('x'.repeat(11)), (f) => seen.push(f)), false);
    assert.deepEqual(seen, []);
  });

  it('carries relays between two nodes over the link once it is up, in order and intact, with no PUBLISH', async () => {
    const prefix = `lnk${++round}:`;
    const [a, b] = [await node(prefix), await node(prefix)];
    // The first message makes a dial b's link; it and its marker go over Redis.
    a.delivery.send(b.id('s'), launch(a.id('j'), 'u0'));
    await eventually(() => b.got.length === 1, 5000, 'the first one delivered');
    await sleep(200);
    const before = await publishes();
    const x = a.id('x');
    const sent: DeliveryMessage[] = [
      launch(x, 'u1'),
      { kind: 'answer', name: 'ü🙂:3', uid: 'u2', sharer: x, message: new RawJson('"ok"'), sentAt: 7 },
      { kind: 'answer', name: 'n', uid: 'u3', sharer: x, message: { binary: Buffer.from([0, 255]) }, sentAt: 1 },
      { kind: 'sharer-gone', name: 'lone\ud800', uid: 'u4', sharer: x },
      { kind: 'joiner-gone', name: 'n', uid: 'u5', joiner: x },
    ];
    for (const m of sent) a.delivery.send(b.id('t'), m);
    await eventually(() => b.got.length === 6, 5000, 'all delivered');
    assert.equal((await publishes()) - before, 0, 'nothing went through Redis');
    const plain = (m: DeliveryMessage): unknown => ('message' in m && m.message instanceof RawJson ? { ...m, message: m.message.value } : m);
    assert.deepEqual(
      b.got.slice(1).map(([target, m]) => [target, plain(m)]),
      sent.map((m) => [b.id('t'), plain(m)]),
    );
    assert.deepEqual(a.drops.concat(b.drops), []);
  });

  it('keeps the order from one node to another across the switch to a link and back after it closes', async () => {
    const prefix = `lnk${++round}:`;
    const [a, b] = [await node(prefix), await node(prefix)];
    const before = await publishes();
    // Redis while a dials, then the link.
    await stream(a, b, 0, 300);
    await eventually(() => b.got.length === 300, 5000, 'the first 300 delivered');
    assert.deepEqual(uids(b), range(300));
    assert.deepEqual([a.delivery.openLinks, b.delivery.openLinks], [1, 0], 'only a dialed');
    const over = (await publishes()) - before;
    // The first ones, and the marker, went over Redis; once the link was up, the rest took it.
    assert.ok(over >= 2 && over < 250, `${over} of 300 went through Redis`);
    // The link is closed (as when the registry reports b gone and back): Redis again, then a new link.
    a.delivery.forgetNode(b.delivery.nodeId);
    assert.equal(a.delivery.openLinks, 0);
    await stream(a, b, 300, 300);
    await eventually(() => b.got.length === 600, 5000, 'all 600 delivered');
    assert.deepEqual(uids(b), range(600));
    assert.equal(a.delivery.openLinks, 1, 'dialed again');
    assert.deepEqual([a.drops, b.drops], [['node gone'], []], 'nothing lost, only the link closed');
  });

  it('goes over Redis to a node without links, and for sends in both directions at once', async () => {
    const prefix = `lnk${++round}:`;
    const [a, b, c] = [await node(prefix), await node(prefix, false), await node(prefix)];
    await Promise.all([stream(a, b, 0, 100), stream(a, c, 0, 100), stream(c, a, 0, 100)]);
    await eventually(() => b.got.length === 100 && c.got.length === 100 && a.got.length === 100, 5000, 'all delivered');
    for (const n of [a, b, c]) assert.deepEqual(uids(n), range(100));
    assert.equal(b.delivery.linkAddress, undefined);
    assert.deepEqual(
      a.drops.filter((d) => d !== 'no link to dial'),
      [],
      'a only notices that b has no link',
    );
  });

  it('closes a link whose hello has the wrong token, or names another node, and delivers nothing from it', async () => {
    const prefix = `lnk${++round}:`;
    const [a, b] = [await node(prefix), await node(prefix)];
    const token = await tokenOf(prefix, b);
    // A relay that would be delivered at once on an accepted link: its marker is already there.
    const frame = encodeLinkFrame(encodeTextFrame(a.delivery.nodeId, b.id('s'), launch(a.id('j'), 'u0'))!);
    for (const id of ['id1', 'id2']) await admin.publish(`${prefix}deliver:${b.delivery.nodeId}`, `L${id}`);
    for (const hello of [`H1 ${a.delivery.nodeId} ${b.delivery.nodeId} id1 wrong${token}`, `H1 ${a.delivery.nodeId} ${a.delivery.nodeId} id2 ${token}`, 'GET / HTTP/1.1']) {
      const socket = await dialRaw(b);
      socket.write(Buffer.concat([encodeLinkFrame(hello), frame]));
      await closed(socket, 2000);
    }
    // Too long for a hello.
    const long = await dialRaw(b);
    long.write(encodeLinkFrame('H1 '.padEnd(1000, 'x')));
    await closed(long, 2000);
    assert.deepEqual(b.got, []);
  });

  it('holds what a link brings until its marker has come over Redis, and drops it when the marker never comes', async () => {
    const prefix = `lnk${++round}:`;
    const [a, b] = [await node(prefix), await node(prefix)];
    const token = await tokenOf(prefix, b);
    const text = (uid: string) => encodeLinkFrame(encodeTextFrame(a.delivery.nodeId, b.id('s'), launch(a.id('j'), uid))!);
    const held = await dialRaw(b);
    held.write(Buffer.concat([encodeLinkFrame(`H1 ${a.delivery.nodeId} ${b.delivery.nodeId} link1 ${token}`), text('u0')]));
    await sleep(300);
    assert.deepEqual(b.got, [], 'nothing before the marker');
    await admin.publish(`${prefix}deliver:${b.delivery.nodeId}`, 'Llink1');
    await eventually(() => b.got.length === 1, 3000, 'delivered after the marker');
    held.write(text('u1'));
    await eventually(() => b.got.length === 2, 3000, 'then at once');
    // A marker that comes first lets the link deliver at once.
    await admin.publish(`${prefix}deliver:${b.delivery.nodeId}`, 'Llink2');
    const early = await dialRaw(b);
    early.write(Buffer.concat([encodeLinkFrame(`H1 ${a.delivery.nodeId} ${b.delivery.nodeId} link2 ${token}`), text('u2')]));
    await eventually(() => b.got.length === 3, 3000, 'delivered with an early marker');
    // No marker at all: closed after its timeout, nothing delivered.
    const orphan = await dialRaw(b);
    orphan.write(Buffer.concat([encodeLinkFrame(`H1 ${a.delivery.nodeId} ${b.delivery.nodeId} link3 ${token}`), text('u3')]));
    await closed(orphan);
    assert.deepEqual(uids(b), ['u0', 'u1', 'u2']);
    assert.ok(b.drops.includes('link marker missing'));
  });
});
