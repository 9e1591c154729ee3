/**
 * Per-address budgets in Redis: many keys spent in one script run count on
 * the same counters as rate-limiter-flexible's one-key path, refuse past
 * the budget with the time left in the window, and fall back to counting
 * in memory when Redis is away. Real redis-server.
 * @module
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { budgetFactory, type Budget } from '../../src/server/limiter-store.js';
import { startRedis, type TestRedis } from '../support/redis.js';

describe('Redis budgets spent many keys at a time', () => {
  let server: TestRedis;
  let client: Redis;
  let round = 0;

  before(async () => {
    server = await startRedis();
    client = new Redis(server.url, { enableOfflineQueue: false, maxRetriesPerRequest: 0, lazyConnect: true, retryStrategy: () => 50 });
    client.on('error', () => undefined);
    await client.connect();
  });
  after(async () => {
    client.disconnect();
    await server.stop();
  });

  /** A budget of `points` per 10 s window under a prefix of its own. */
  const budget = (points: number, timeoutMs = 500): Budget =>
    budgetFactory({ kind: 'redis', client, keyPrefix: `t${++round}:`, timeoutMs })({ keyPrefix: 'event', points, durationSeconds: 10 });

  it('counts each key apart and refuses only the one past its budget, with the window left', async () => {
    const events = budget(10);
    assert.deepEqual(await events.spendEach(['a', 'b', 'c'], [4, 10, 2]), [0, 0, 0]);
    const [a, b, c] = await events.spendEach(['a', 'b', 'c'], [4, 1, 2]);
    assert.equal(a, 0, 'a has spent 8 of 10');
    assert.ok(b! > 9000 && b! <= 10000, `b is past its 10 points and waits out the window: ${b} ms`);
    assert.equal(c, 0, 'c has spent 4 of 10');
  });

  it('shares its counters with the one-key path (the same Redis keys)', async () => {
    const events = budget(10);
    assert.equal(await events.spend('x', 6), 0);
    const [x] = await events.spendEach(['x'], [5]);
    assert.ok(x! > 0, 'six spent one at a time and five at once are eleven');
    assert.ok((await events.spend('y', 9)) === 0 && (await events.spendEach(['y'], [1]))[0] === 0, 'ten of ten is within budget');
    assert.ok((await events.spend('y', 1)) > 0, 'the one-key path sees what the batch spent');
  });

  it('sets the window on the key it creates, and spends more keys than one script run holds', async () => {
    const events = budget(3);
    const keys = Array.from({ length: 1200 }, (_, i) => `k${i}`);
    assert.deepEqual(new Set(await events.spendEach(keys, keys.map(() => 3))), new Set([0]));
    const again = await events.spendEach(keys, keys.map(() => 1));
    assert.equal(again.filter((ms) => ms > 0).length, 1200, 'every key is over budget on the second spend');
    const ttl = await client.pttl(`limit:t${round}:event:k1199`);
    assert.ok(ttl > 9000 && ttl <= 10000, `the key expires with its window: ${ttl} ms`);
  });

  it('counts in memory on this node while Redis is away, and never rejects', async () => {
    const events = budget(5, 200);
    await server.halt();
    try {
      assert.deepEqual(await events.spendEach(['m', 'n'], [5, 2]), [0, 0]);
      const [m, n] = await events.spendEach(['m', 'n'], [1, 1]);
      assert.ok(m! > 0, 'the insurance counted m past its 5 points');
      assert.equal(n, 0);
    } finally {
      await server.resume();
    }
  });
});
