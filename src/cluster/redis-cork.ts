/**
 * Coalesces the commands a node sends to Redis. ioredis writes every
 * command with a `write` of its own, one syscall each; a node under load
 * issues many per turn of the event loop (a route script per first launch,
 * a PUBLISH per relay, each from its own client socket's read). Corking the
 * Redis socket on the first command and uncorking it once the I/O callbacks
 * of this turn have run (`setImmediate`) sends them in one `writev`, and
 * Redis, which answers a client once per turn of its own loop, then sends
 * their replies back in one write too. The delay is the rest of the current
 * turn, no timer. What a client could see overtake a held command (the ack
 * of a relay) calls `uncorkNow` first (RedisDelivery.flush).
 *
 * ioredis's own auto-pipelining groups commands as well, but pays a
 * Pipeline object, a Promise and a callback array per group (measured: more
 * CPU than separate writes); this adds nothing per command but a flag test.
 * @module
 */
import type { Redis } from 'ioredis';

interface Corkable {
  cork(): void;
  uncork(): void;
  writableCorked: number;
  destroyed: boolean;
}

const corked: Corkable[] = [];
const tasks: (() => void)[] = [];
let flushQueued = false;

function flush(): void {
  try {
    // Commands the tasks send join this write: the flush is still queued for them.
    for (let i = 0; i < tasks.length; i++) tasks[i]!();
  } finally {
    tasks.length = 0;
    for (const stream of corked) if (!stream.destroyed) stream.uncork();
    corked.length = 0;
    flushQueued = false;
  }
}

function queueFlush(): void {
  if (flushQueued) return;
  flushQueued = true;
  setImmediate(flush);
}

/** Runs `task` at the end of this turn, right before the held commands are written: what it sends goes with them. */
export function atTurnEnd(task: () => void): void {
  tasks.push(task);
  queueFlush();
}

/**
 * Call right before sending a command on `redis`: it, and every command
 * sent on the same connection for the rest of this turn, leave together
 * when the turn ends (or at `uncorkNow`).
 */
export function corkTurn(redis: Redis): void {
  const stream = (redis as unknown as { stream?: Corkable }).stream;
  if (stream === undefined || stream.writableCorked !== 0) return;
  stream.cork();
  corked.push(stream);
  queueFlush();
}

/**
 * Writes out at once what is held on `redis`: call it before anything a
 * client could see overtake a held command, such as the ack of a relay
 * (the relay must have reached Redis first, as in memory mode it has
 * reached the peer).
 */
export function uncorkNow(redis: Redis): void {
  const stream = (redis as unknown as { stream?: Corkable }).stream;
  if (stream !== undefined && stream.writableCorked !== 0 && !stream.destroyed) stream.uncork();
}
