/**
 * What only the Redis registry has: keys under the prefix with expiries and
 * none left when idle, node liveness (a silent node's sharers are skipped,
 * its keys reaped, the survivors told), restore after Redis lost its data,
 * and fast `internal` failures while Redis is away. Real redis-server.
 * @module
 */
import assert from 'node:assert/strict';
import { after, afterEach, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import type { RegistrySnapshot } from '../../src/core/registry.js';
import { SignalingError } from '../../src/core/signaling-error.js';
import { mintNodeId, socketIdPrefix } from '../../src/cluster/node-id.js';
import { RedisRegistry, type RedisRegistryOptions } from '../../src/cluster/redis-registry.js';
import { keysUnder, startRedis, type TestRedis } from '../support/redis.js';
import { eventually } from '../support/util.js';

const HOUR = 3_600_000;

describe('RedisRegistry', () => {
  let server: TestRedis;
  let inspect: Redis;
  let round = 0;
  let prefix: string;
  const open: { registry: RedisRegistry; client: Redis }[] = [];

  const node = async (extra: Partial<RedisRegistryOptions> = {}): Promise<{ registry: RedisRegistry; client: Redis; id: (s: string) => string }> => {
    const client = new Redis(server.url, {
      enableOfflineQueue: false,
      commandTimeout: 1000,
      maxRetriesPerRequest: 0,
      lazyConnect: true,
      retryStrategy: () => 50,
    });
    client.on('error', () => undefined);
    await client.connect();
    const nodeId = mintNodeId();
    const registry = new RedisRegistry({ redis: client, nodeId, prefix, heartbeatInterval: 100, nodeTimeout: 800, ...extra });
    await registry.start();
    open.push({ registry, client });
    return { registry, client, id: (s) => `${socketIdPrefix(nodeId)}${s}` };
  };

  before(async () => {
    server = await startRedis();
    inspect = server.client();
  });
  afterEach(async () => {
    for (const { registry, client } of open.splice(0)) {
      await registry.close().catch(() => undefined);
      client.disconnect();
    }
  });
  after(() => server.stop());

  const fresh = (): void => {
    prefix = `reg${++round}:`;
  };

  it('keeps every key under the prefix with an expiry, and none once everything is removed', async () => {
    fresh();
    const a = await node();
    const b = await node();
    const now = Date.now();
    await a.registry.addShare('n', a.id('s'), { expiresAt: now + HOUR, maxJoins: 3 });
    assert.ok((await b.registry.route('n', 'u', b.id('j'), now)).ok);
    await new Promise((r) => setTimeout(r, 250)); // a few heartbeats
    const keys = await keysUnder(inspect, prefix);
    assert.ok(keys.length >= 5, keys.join(' '));
    const otherPrefix = (await inspect.keys('*')).filter((k) => !k.startsWith(prefix));
    assert.deepEqual(otherPrefix, []);
    for (const key of keys) {
      const ttl = await inspect.pttl(key);
      assert.ok(ttl > 0 && ttl <= HOUR + 61_000, `${key} has pttl ${ttl}`);
    }
    await a.registry.removeShare('n', a.id('s'));
    await b.registry.removeRoute('n', 'u', b.id('j'));
    // Idle nodes drop their liveness marks at their next heartbeat.
    await eventually(async () => (await keysUnder(inspect, prefix)).length === 0, 3000, 'no keys left');
  });

  it('skips the sharers of a silent node at once, then reaps its keys and tells the survivors', async () => {
    fresh();
    const gone: string[] = [];
    const a = await node();
    const b = await node({ onNodeGone: (n) => gone.push(n) });
    const now = Date.now();
    await a.registry.addShare('n', a.id('s'), { expiresAt: now + HOUR, maxJoins: undefined });
    await a.registry.addShare('other', a.id('s'), { expiresAt: now + HOUR, maxJoins: undefined });
    assert.ok((await b.registry.route('n', 'u', b.id('j'), now)).ok);
    assert.ok((await a.registry.route('n', 'v', a.id('j2'), now)).ok);
    // Node a falls silent without a word, as after kill -9.
    a.client.disconnect();
    const silentAt = Date.now();
    await eventually(async () => {
      const r = await b.registry.route('n', 'late', b.id('late'), Date.now());
      if (r.ok) await b.registry.removeRoute('n', 'late', b.id('late'));
      return !r.ok && r.code === 'no-sharer';
    }, 5000, 'no-sharer once a is silent');
    assert.ok(Date.now() - silentAt < 800 + 1500, `took ${Date.now() - silentAt} ms`);
    await eventually(() => gone.length === 1, 3000, 'onNodeGone');
    assert.equal(gone[0], a.registry.nodeId);
    await eventually(async () => (await keysUnder(inspect, prefix)).every((k) => !k.includes(a.registry.nodeId)), 3000, 'a reaped');
    assert.equal(await inspect.hlen(`${prefix}s:n`), 0);
    assert.equal(await inspect.hexists(`${prefix}r:n`, 'v'), 0);
    // b's own route survives a's death.
    assert.deepEqual(await b.registry.lookupRoute('n', 'u'), { sharer: a.id('s'), joiner: b.id('j') });
    assert.deepEqual(await b.registry.counts(), { shares: 0, routes: 1 });
  });

  it('registers again what the node holds after Redis lost its data', async () => {
    fresh();
    const now = Date.now();
    let snapshot: RegistrySnapshot = { shares: [], routes: [] };
    const a = await node({ snapshot: () => snapshot });
    const b = await node();
    await a.registry.addShare('n', a.id('s'), { expiresAt: now + HOUR, maxJoins: 2 });
    assert.ok((await b.registry.route('n', 'u', b.id('j'), now)).ok);
    assert.ok((await a.registry.route('m', 'x', a.id('j'), now)).ok === false);
    await b.registry.addShare('m', b.id('s'), { expiresAt: now + HOUR, maxJoins: undefined });
    assert.ok((await a.registry.route('m', 'x', a.id('j'), now)).ok);
    snapshot = {
      shares: [{ name: 'n', sharer: a.id('s'), terms: { expiresAt: now + HOUR, maxJoins: 2 }, joins: 1 }],
      routes: [{ name: 'm', uid: 'x', route: { joiner: a.id('j'), sharer: b.id('s') } }],
    };
    await inspect.flushall();
    await eventually(async () => (await inspect.hlen(`${prefix}s:n`)) === 1, 3000, 'share restored');
    assert.deepEqual(await b.registry.lookupRoute('m', 'x'), { sharer: b.id('s'), joiner: a.id('j') });
    // The join count came back too: one more place, then full.
    assert.ok((await b.registry.route('n', 'u2', b.id('j2'), Date.now())).ok);
    assert.deepEqual(await b.registry.route('n', 'u3', b.id('j3'), Date.now()), { ok: false, code: 'share-full' });
  });

  it('fails fast with internal while Redis is away, reports not ready, and recovers', async () => {
    fresh();
    const a = await node({ snapshot: () => ({ shares: [], routes: [] }) });
    assert.equal(a.registry.state().ready, true);
    await server.halt();
    try {
      const started = Date.now();
      await assert.rejects(
        a.registry.addShare('n', a.id('s'), { expiresAt: Date.now() + HOUR, maxJoins: undefined }),
        (error: unknown) => error instanceof SignalingError && error.code === 'internal' && /Redis/.test(error.message),
      );
      await assert.rejects(a.registry.route('n', 'u', a.id('j'), Date.now()), SignalingError);
      await assert.rejects(a.registry.lookupRoute('n', 'u'), SignalingError);
      assert.ok(Date.now() - started < 1500, `failures took ${Date.now() - started} ms`);
      await eventually(() => !a.registry.state().ready, 3000, 'not ready');
    } finally {
      await server.resume();
    }
    await eventually(() => a.registry.state().ready, 5000, 'ready again');
    await a.registry.addShare('n', a.id('s'), { expiresAt: Date.now() + HOUR, maxJoins: undefined });
    assert.deepEqual(await a.registry.counts(), { shares: 1, routes: 0 });
  });

  it('tells the others once that a node left, so joiners routed to its sharers hear of it, then leaves nothing', async () => {
    fresh();
    const gone: string[] = [];
    const a = await node();
    const b = await node({ onNodeGone: (n) => gone.push(n) });
    const now = Date.now();
    await a.registry.addShare('n', a.id('s'), { expiresAt: now + HOUR, maxJoins: undefined });
    // b's joiner holds a route to a's sharer (as when its launch reached a after a stopped listening).
    assert.ok((await b.registry.route('n', 'u', b.id('j'), now)).ok);
    await a.registry.close();
    await eventually(() => gone.length === 1, 3000, 'onNodeGone for the node that left');
    assert.deepEqual(gone, [a.registry.nodeId]);
    await eventually(async () => (await keysUnder(inspect, prefix)).every((k) => !k.includes(a.registry.nodeId)), 3000, 'nothing of a left');
    assert.deepEqual(await inspect.smembers(`${prefix}nodes`), [b.registry.nodeId]);
    // Once reported, a stays reported: no second onNodeGone at later beats.
    await new Promise((r) => setTimeout(r, 400));
    assert.deepEqual(gone, [a.registry.nodeId]);
  });

  it('removes everything of the node at once on close', async () => {
    fresh();
    const a = await node();
    const now = Date.now();
    for (let i = 0; i < 1200; i++) await a.registry.addShare(`n${i % 600}`, a.id(`s${i % 2}`), { expiresAt: now + HOUR, maxJoins: undefined });
    assert.ok((await keysUnder(inspect, prefix)).length > 600);
    await a.registry.close();
    assert.deepEqual(await keysUnder(inspect, prefix), []);
  });
});
