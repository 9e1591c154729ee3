/**
 * readRedisDirectly: what a real redis-server sends reaches ioredis within
 * the socket read that brought it, not a tick later through the stream's
 * buffer, on the first connection and again after a reconnect (a new
 * socket). Without it, every message's stack runs through `emitReadable_`
 * (checked).
 * @module
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { readRedisDirectly } from '../../src/cluster/redis-reads.js';
import { startRedis, type TestRedis } from '../support/redis.js';

/** The stack a pub/sub message arrives with, in full. */
async function arrivalStack(subscriber: Redis, publisher: Redis, channel: string): Promise<string> {
  const arrived = new Promise<string>((resolve) => {
    subscriber.once('messageBuffer', () => {
      const limit = Error.stackTraceLimit;
      Error.stackTraceLimit = Infinity;
      const stack = new Error('arrival').stack ?? '';
      Error.stackTraceLimit = limit;
      resolve(stack);
    });
  });
  await publisher.publish(channel, 'x');
  return arrived;
}

describe('readRedisDirectly', () => {
  let server: TestRedis;
  before(async () => {
    server = await startRedis();
  });
  after(async () => {
    await server.stop();
  });

  it('hands each message to ioredis from the socket read, also after a reconnect', async () => {
    const subscriber = new Redis(server.url, { lazyConnect: true });
    const publisher = new Redis(server.url, { lazyConnect: true });
    readRedisDirectly(subscriber);
    try {
      await Promise.all([subscriber.connect(), publisher.connect()]);
      await subscriber.subscribe('reads');
      const first = await arrivalStack(subscriber, publisher, 'reads');
      assert.match(first, /onStreamRead/);
      assert.doesNotMatch(first, /emitReadable_/);

      const socket = subscriber.stream;
      subscriber.disconnect(true);
      // ioredis subscribes again on the new connection before it is ready.
      await new Promise((resolve) => subscriber.once('ready', resolve));
      assert.notEqual(subscriber.stream, socket);
      const again = await arrivalStack(subscriber, publisher, 'reads');
      assert.match(again, /onStreamRead/);
      assert.doesNotMatch(again, /emitReadable_/);
    } finally {
      subscriber.disconnect();
      publisher.disconnect();
    }
  });
});
