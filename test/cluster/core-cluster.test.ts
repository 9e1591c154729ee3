/**
 * Two signaling cores in one process as two cluster nodes: RedisRegistry
 * and RedisDelivery on a real redis-server, a sink that records what the
 * endpoint would emit. Covers what the core does for cluster mode: relays
 * across nodes (binary and in order), peersGone when a node dies, the
 * snapshot a restore uses, and failures while Redis is away.
 * @module
 */
import assert from 'node:assert/strict';
import { after, afterEach, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { mintNodeId, nodeOf, socketIdPrefix } from '../../src/cluster/node-id.js';
import { RedisDelivery } from '../../src/cluster/redis-delivery.js';
import { RedisRegistry } from '../../src/cluster/redis-registry.js';
import { systemClock, type Clock } from '../../src/core/clock.js';
import { SignalingCore, type SocketSink } from '../../src/core/signaling-core.js';
import { SignalingError } from '../../src/core/signaling-error.js';
import { keysUnder, startRedis, type TestRedis } from '../support/redis.js';
import { eventually, sleep } from '../support/util.js';

type Seen = [string, string, ...unknown[]];

class RecordingSink implements SocketSink {
  readonly seen: Seen[] = [];
  /** Runs inside the sink call, as a client's reaction to the event would follow it. */
  onShareExpired: ((socket: string, name: string) => void) | undefined;
  launchResponse(socket: string, uid: string, message: unknown): void {
    this.seen.push(['launchResponse', socket, uid, message]);
  }
  answerResponse(socket: string, message: unknown): void {
    this.seen.push(['answerResponse', socket, message]);
  }
  shareExpired(socket: string, name: string): void {
    this.seen.push(['shareExpired', socket, name]);
    this.onShareExpired?.(socket, name);
  }
  sharerGone(socket: string, name: string, uid: string): void {
    this.seen.push(['sharerGone', socket, name, uid]);
  }
  of(event: string): Seen[] {
    return this.seen.filter((s) => s[0] === event);
  }
}

interface Node {
  core: SignalingCore;
  sink: RecordingSink;
  registry: RedisRegistry;
  delivery: RedisDelivery;
  clients: Redis[];
  id(local: string): string;
  /** Stops without a word, as after kill -9. */
  crash(): void;
  close(): Promise<void>;
}

describe('SignalingCore in cluster mode (in-process nodes, real Redis)', () => {
  let server: TestRedis;
  let round = 0;
  let nodes: Node[] = [];

  async function node(prefix: string, clock: Clock = systemClock): Promise<Node> {
    const options = { enableOfflineQueue: false, commandTimeout: 1000, maxRetriesPerRequest: 0, lazyConnect: true, retryStrategy: () => 50 };
    const redis = new Redis(server.url, options);
    const subscriber = new Redis(server.url, { ...options, enableOfflineQueue: true });
    for (const c of [redis, subscriber]) c.on('error', () => undefined);
    await Promise.all([redis.connect(), subscriber.connect()]);
    const nodeId = mintNodeId();
    const sink = new RecordingSink();
    let core: SignalingCore | undefined;
    const registry = new RedisRegistry({
      redis,
      nodeId,
      prefix,
      heartbeatInterval: 100,
      nodeTimeout: 800,
      onNodeGone: (dead) => core!.peersGone((s) => nodeOf(s) === dead),
      snapshot: () => core!.snapshot(),
    });
    const delivery = new RedisDelivery({ publisher: redis, subscriber, nodeId, prefix });
    core = new SignalingCore({
      registry,
      delivery,
      sink,
      clock,
      limits: { defaultTtl: 60_000, maxTtl: 60_000, maxSharesPerSocket: 8, maxRoutesPerSocket: 8 },
    });
    await delivery.start();
    await registry.start();
    const made: Node = {
      core,
      sink,
      registry,
      delivery,
      clients: [redis, subscriber],
      id: (local) => `${socketIdPrefix(nodeId)}${local}`,
      crash() {
        void registry.close().catch(() => undefined);
        redis.disconnect();
        subscriber.disconnect();
      },
      async close() {
        await core.detachAll().catch(() => undefined);
        await delivery.close();
        await registry.close();
        redis.disconnect();
        subscriber.disconnect();
      },
    };
    nodes.push(made);
    return made;
  }

  async function pair(): Promise<[Node, Node, string]> {
    const prefix = `core${++round}:`;
    return [await node(prefix), await node(prefix), prefix];
  }

  before(async () => {
    server = await startRedis();
  });
  afterEach(async () => {
    for (const n of nodes) await n.close().catch(() => undefined);
    nodes = [];
  });
  after(() => server.stop());

  it('relays across nodes, binary payloads as binary, many launches in order', async () => {
    const [a, b] = await pair();
    const sharer = a.id('s');
    const joiner = b.id('j');
    a.core.attach(sharer);
    b.core.attach(joiner);
    await a.core.share(sharer, 'bin', {});
    const payload = { sdp: 'offer', blob: Buffer.from([0, 1, 2, 255]), nested: [{ deep: [1, 'two', null] }] };
    await b.core.launch(joiner, 'bin', 'u', payload);
    for (let i = 0; i < 200; i++) void b.core.launch(joiner, 'bin', 'u', `candidate-${i}`);
    await eventually(() => a.sink.of('launchResponse').length === 201, 5000, '201 launches');
    const [first, ...rest] = a.sink.of('launchResponse');
    assert.deepEqual(first, ['launchResponse', sharer, 'u', payload]);
    assert.ok(Buffer.isBuffer((first![3] as typeof payload).blob));
    assert.deepEqual(
      rest.map((s) => s[3]),
      Array.from({ length: 200 }, (_, i) => `candidate-${i}`),
    );
    await a.core.answer(sharer, 'bin', 'u', Buffer.from('answer'));
    await eventually(() => b.sink.of('answerResponse').length === 1, 5000, 'answer');
    assert.deepEqual(b.sink.of('answerResponse')[0], ['answerResponse', joiner, Buffer.from('answer')]);
  });

  it('past the route cap, the joiner\'s oldest routes leave Redis and the sharer on the other node', async () => {
    const [a, b] = await pair();
    const sharer = a.id('s');
    const joiner = b.id('j');
    a.core.attach(sharer);
    b.core.attach(joiner);
    await a.core.share(sharer, 'cap', {});
    // maxRoutesPerSocket is 8: u0 and u1 are evicted by the launches of u8 and u9.
    for (let i = 0; i < 10; i++) await b.core.launch(joiner, 'cap', `u${i}`, `offer-${i}`);
    // All ten launches at a, and so the joiner-gone each eviction sent ahead
    // of its launch (one channel, in order): a holds 8 routes also after the
    // first eight launches, before any eviction reached it.
    await eventually(
      () => a.sink.of('launchResponse').length === 10 && a.core.localStats().sharerRoutes === 8,
      5000,
      'the sharer forgets the evicted joiners',
    );
    assert.equal(b.core.localStats().joinerRoutes, 8);
    assert.deepEqual((await b.core.stats()).registry, { shares: 1, routes: 8 });
    for (const uid of ['u0', 'u1']) {
      assert.equal(await a.registry.lookupRoute('cap', uid), undefined);
      await assert.rejects(a.core.answer(sharer, 'cap', uid, 'late'), (e: unknown) => e instanceof SignalingError && e.code === 'unknown-joiner');
    }
    for (let i = 2; i < 10; i++) await a.core.answer(sharer, 'cap', `u${i}`, `answer-${i}`);
    await eventually(() => b.sink.of('answerResponse').length === 8, 5000, 'answers');
    // An evicted uid is free for another joiner.
    b.core.attach(b.id('k'));
    await b.core.launch(b.id('k'), 'cap', 'u0', 'offer-k');
    await eventually(() => a.sink.of('launchResponse').length === 11, 5000, 'launch of k');
  });

  it('tells a sharer its share expired only once no node routes a new joiner to it, even one whose clock runs behind', async () => {
    const prefix = `core${++round}:`;
    const a = await node(prefix);
    // Clocks of cluster machines differ; b's, a second behind, still sees the share as live.
    const b = await node(prefix, { now: () => systemClock.now() - 1000, schedule: systemClock.schedule });
    const sharer = a.id('s');
    const joiner = b.id('j');
    a.core.attach(sharer);
    b.core.attach(joiner);
    await a.core.share(sharer, 'brief', { ttl: 200 });
    // a's link to Redis is backlogged: its removal of the share lands 300 ms late.
    const removeShare = a.registry.removeShare.bind(a.registry);
    a.registry.removeShare = async (name, socket) => {
      await sleep(300);
      return removeShare(name, socket);
    };
    const late = new Promise<unknown>((resolve) => {
      a.sink.onShareExpired = () => resolve(b.core.launch(joiner, 'brief', 'u', 'after expiry').then(() => 'ok', (e: unknown) => e));
    });
    const outcome = await late;
    assert.ok(outcome instanceof SignalingError && outcome.code === 'no-sharer', `a launch after shareExpired: ${String(outcome)}`);
    assert.deepEqual(a.sink.of('launchResponse'), []);
  });

  it('tells joiners sharer-gone when the sharer\'s node dies, and forgets that node\'s joiners', async () => {
    const [a, b, prefix] = await pair();
    a.core.attach(a.id('s'));
    b.core.attach(b.id('s'));
    b.core.attach(b.id('j'));
    a.core.attach(a.id('j'));
    await a.core.share(a.id('s'), 'x', {});
    await b.core.share(b.id('s'), 'y', {});
    await b.core.launch(b.id('j'), 'x', 'to-a', 'offer');
    await a.core.launch(a.id('j'), 'y', 'from-a', 'offer');
    await eventually(() => b.sink.of('launchResponse').length === 1, 5000, 'launch to b');
    assert.equal(b.core.localStats().sharerRoutes, 1);
    a.crash();
    await eventually(() => b.sink.of('sharerGone').length === 1, 5000, 'sharer-gone');
    assert.deepEqual(b.sink.of('sharerGone')[0], ['sharerGone', b.id('j'), 'x', 'to-a']);
    assert.deepEqual(b.core.localStats(), { sockets: 2, shares: 1, joinerRoutes: 0, sharerRoutes: 0 });
    assert.deepEqual(b.core.snapshot().routes, []);
    // The joiner's next launch finds nobody (a's share is dead), and a's keys are reaped.
    await assert.rejects(b.core.launch(b.id('j'), 'x', 'to-a', 'again'), (e: unknown) => e instanceof SignalingError && e.code === 'no-sharer');
    await eventually(async () => (await keysUnder(b.clients[0]!, prefix)).every((k) => !k.includes(a.registry.nodeId)), 5000, 'reaped');
  });

  it('snapshots shares with the joins it saw, and the routes of its joiners', async () => {
    const [a, b] = await pair();
    a.core.attach(a.id('s'));
    b.core.attach(b.id('j1'));
    b.core.attach(b.id('j2'));
    const grant = await a.core.share(a.id('s'), 'snap', { maxJoins: 5 });
    await b.core.launch(b.id('j1'), 'snap', 'u1', 'o');
    await b.core.launch(b.id('j2'), 'snap', 'u2', 'o');
    await b.core.launch(b.id('j2'), 'snap', 'u2', 'o again');
    await eventually(() => a.sink.of('launchResponse').length === 3, 5000, 'launches');
    assert.deepEqual(a.core.snapshot(), {
      shares: [{ name: 'snap', sharer: a.id('s'), terms: { expiresAt: grant.expiresAt, maxJoins: 5 }, joins: 2 }],
      routes: [],
    });
    assert.deepEqual(
      b.core.snapshot().routes.sort((x, y) => x.uid.localeCompare(y.uid)),
      [
        { name: 'snap', uid: 'u1', route: { joiner: b.id('j1'), sharer: a.id('s') } },
        { name: 'snap', uid: 'u2', route: { joiner: b.id('j2'), sharer: a.id('s') } },
      ],
    );
  });

  it('while Redis is away: a new share fails and leaves nothing, a renewal keeps the old share, cross-node relays fail, local ones work', async () => {
    const [a, b, prefix] = await pair();
    a.core.attach(a.id('s'));
    a.core.attach(a.id('local-joiner'));
    b.core.attach(b.id('j'));
    const kept = await a.core.share(a.id('s'), 'kept', { ttl: 30_000 });
    await b.core.launch(b.id('j'), 'kept', 'remote', 'o');
    await a.core.launch(a.id('local-joiner'), 'kept', 'local', 'o');
    await eventually(() => a.sink.of('launchResponse').length === 2, 5000, 'launches');
    await server.halt();
    try {
      // Until a client has seen its connection close, a message may still be
      // handed to it and lost: that instant is not what this test is about.
      await eventually(() => [...a.clients, ...b.clients].every((c) => c.status !== 'ready'), 5000, 'clients saw the outage');
      const internal = (e: unknown): boolean => e instanceof SignalingError && e.code === 'internal';
      await assert.rejects(a.core.share(a.id('s'), 'new', {}), internal);
      await assert.rejects(a.core.share(a.id('s'), 'kept', { ttl: 50_000 }), internal);
      assert.deepEqual(
        a.core.snapshot().shares.map((s) => [s.name, s.terms.expiresAt]),
        [['kept', kept.expiresAt]],
      );
      await assert.rejects(b.core.launch(b.id('j'), 'kept', 'remote', 'candidate'), internal);
      await assert.rejects(a.core.answer(a.id('s'), 'kept', 'remote', 'answer'), internal);
      // Sharer and joiner on the same node need no Redis for a route they hold.
      await a.core.launch(a.id('local-joiner'), 'kept', 'local', 'candidate');
      await a.core.answer(a.id('s'), 'kept', 'local', 'answer');
      assert.deepEqual(a.sink.of('answerResponse').at(-1), ['answerResponse', a.id('local-joiner'), 'answer']);
    } finally {
      await server.resume();
    }
    // Ready as a server's /readyz means it: the registry, and the subscriber
    // listening again (it reconnects on its own; a relay published before
    // its SUBSCRIBE reaches nobody).
    await eventually(
      () => a.registry.state().ready && b.registry.state().ready && a.delivery.listening && b.delivery.listening,
      5000,
      'ready again',
    );
    const redis = a.clients[0]!;
    await eventually(async () => (await redis.hlen(`${prefix}s:kept`)) === 1, 5000, 'kept restored');
    assert.equal(await redis.exists(`${prefix}s:new`), 0);
    await b.core.launch(b.id('j'), 'kept', 'remote', 'after');
    await eventually(() => a.sink.of('launchResponse').some((s) => s[3] === 'after'), 5000, 'relay after the outage');
  });
});
