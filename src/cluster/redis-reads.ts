/**
 * Lets what Redis sends reach ioredis straight from the socket read.
 *
 * ioredis listens for a connection's data with `prependListener('data')`.
 * Node 20's Readable marks a stream as having data listeners only in
 * `on('data')` / `addListener('data')` (its kDataListening flag), and hands
 * a chunk to listeners at once only when that mark is set. With ioredis's
 * listener alone, every chunk read from Redis is buffered instead, and
 * delivered a tick later through `emitReadable_`, `flow` and `read`, with
 * the buffer's bookkeeping in between. On a cluster node that is every
 * reply and every pub/sub message. Node 18 tested the listener count, so
 * ioredis's listener took the direct path there.
 *
 * An empty listener added with `on` sets the mark; ioredis's own listener
 * still runs first. Each connection is a new socket, so it is added again
 * on every `connect` (emitted once ioredis has put its listener in place).
 * @module
 */
import type { Redis } from 'ioredis';

const noop = (): void => undefined;

/** Marks the data listener of each connection `redis` makes from now on (see above). */
export function readRedisDirectly(redis: Redis): void {
  redis.on('connect', () => {
    const stream = redis.stream;
    if (!stream.listeners('data').includes(noop)) stream.on('data', noop);
  });
}
