/**
 * Where the per-address budgets count: in this process without REDIS_URL
 * (a fixed window per key, as rate-limiter-flexible's memory store counts),
 * in Redis (rate-limiter-flexible's store, one counter per key for the
 * whole cluster) when the cluster's Redis client is handed in. Everything
 * above this file is the same in both modes.
 *
 * A budget never holds up or refuses a client because its store is slow or
 * down: after `timeoutMs` (or on any store error) it counts in memory on
 * this node instead, which still bounds a flood, node by node.
 * @module
 */
import type { Redis } from 'ioredis';
import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes, RLWrapperTimeouts } from 'rate-limiter-flexible';

/** Where counters live. */
export type LimiterBackend =
  | { kind: 'memory' }
  | {
      kind: 'redis';
      /** An ioredis client, or a node-redis v4+ client with `redisPackage: true`. */
      client: unknown;
      redisPackage?: boolean;
      /**
       * The cluster's REDIS_PREFIX: keys are `limit:<prefix><budget>:<address>`.
       * They sit beside the prefix, not under it, because they outlive the
       * clients by up to one window (10 s) by design, and everything under
       * the prefix is gone when the last client left.
       * @default 'sigserve:'
       */
      keyPrefix?: string;
      /**
       * Longest wait for Redis before counting in memory instead, ms.
       * @default 500
       */
      timeoutMs?: number;
    };

export interface BudgetOptions {
  /** Namespace of the keys, e.g. `conn` or `event`. */
  keyPrefix: string;
  /** Points a key may spend per window. */
  points: number;
  /** Window length in seconds. */
  durationSeconds: number;
}

export interface Budget {
  /**
   * Spends `points` under `key`. Resolves with 0 while within budget,
   * otherwise with the ms until the window resets. Never rejects.
   */
  spend(key: string, points: number): Promise<number>;
  /**
   * Spends `points[i]` under `keys[i]` for each i (distinct keys), as
   * `spend` would, in one call to the store. Never rejects.
   */
  spendEach(keys: readonly string[], points: readonly number[]): Promise<number[]>;
}

/** Builds budgets on one backend. The composition root makes one per server. */
export type BudgetFactory = (options: BudgetOptions) => Budget;

/**
 * The fixed-window counter of rate-limiter-flexible's memory store, without
 * its timer per key: that store arms a 10 s Timeout for every client
 * address that connects (about 170 bytes each, and every connection from a
 * fresh address pays it). Here one timer sweeps ended windows, armed only
 * while some key is counted, so an idle server holds no timer at all.
 */
class WindowBudget implements Budget {
  readonly #points: number;
  readonly #windowMs: number;
  /** key -> [points spent, performance.now() when the window ends] */
  readonly #windows = new Map<string, [spent: number, endsAt: number]>();
  #sweep: NodeJS.Timeout | undefined;

  constructor(points: number, durationSeconds: number) {
    this.#points = points;
    this.#windowMs = durationSeconds * 1000;
  }

  spend(key: string, points: number): Promise<number> {
    return Promise.resolve(this.#spend(key, points, performance.now()));
  }

  spendEach(keys: readonly string[], points: readonly number[]): Promise<number[]> {
    const now = performance.now();
    return Promise.resolve(keys.map((key, i) => this.#spend(key, points[i]!, now)));
  }

  #spend(key: string, points: number, now: number): number {
    let window = this.#windows.get(key);
    if (window === undefined || window[1] <= now) {
      this.#windows.set(key, (window = [0, now + this.#windowMs]));
      this.#sweep ??= setTimeout(() => this.#sweepEnded(), this.#windowMs).unref();
    }
    window[0] += points;
    return window[0] > this.#points ? Math.max(1, Math.ceil(window[1] - now)) : 0;
  }

  #sweepEnded(): void {
    this.#sweep = undefined;
    const now = performance.now();
    for (const [key, window] of this.#windows) if (window[1] <= now) this.#windows.delete(key);
    if (this.#windows.size > 0) this.#sweep = setTimeout(() => this.#sweepEnded(), this.#windowMs).unref();
  }
}

export function budgetFactory(backend: LimiterBackend): BudgetFactory {
  return (options) => {
    if (backend.kind === 'memory') return new WindowBudget(options.points, options.durationSeconds);
    const prefix = backend.keyPrefix ?? 'sigserve:';
    const base = { keyPrefix: `limit:${prefix}${options.keyPrefix}`, points: options.points, duration: options.durationSeconds };
    // Counts only while Redis is slow or away (per-key timers then are fine).
    const memory = new RateLimiterMemory(base);
    const redis = new RateLimiterRedis({
      ...base,
      storeClient: backend.client,
      useRedisPackage: backend.redisPackage ?? false,
      rejectIfRedisNotReady: true,
      insuranceLimiter: memory,
      // A key already over budget is refused here without asking Redis
      // again until its window ends: a flood costs Redis nothing.
      inMemoryBlockOnConsumed: options.points,
    });
    const timeoutMs = backend.timeoutMs ?? 500;
    const limiter = new RLWrapperTimeouts({ limiter: redis, timeoutMs, insuranceLimiter: memory });
    const spend = async (key: string, points: number): Promise<number> => {
      try {
        await limiter.consume(key, points);
        return 0;
      } catch (outcome) {
        return refusal(outcome);
      }
    };
    const insured = (keys: readonly string[], points: readonly number[]): Promise<number[]> =>
      Promise.all(keys.map((key, i) => memory.consume(key, points[i]).then(() => 0, refusal)));
    const batched = !backend.redisPackage && isIoredis(backend.client) ? defineSpendEach(backend.client) : undefined;
    return {
      spend,
      spendEach(keys, points) {
        if (batched === undefined) return Promise.all(keys.map((key, i) => spend(key, points[i]!)));
        return spendInBatches(batched, keys.map((key) => redis.getKey(key)), points, options.durationSeconds, timeoutMs).then(
          (outcomes) => outcomes.map(([consumed, ttl]) => (consumed > options.points ? Math.max(1, ttl) : 0)),
          // As RLWrapperTimeouts: Redis slow, away or failing, the insurance counts instead.
          () => insured(keys, points),
        );
      },
    };
  };
}

/** A refusal's ms until its window ends; 0 (let the client through) when the store and the insurance both failed. */
const refusal = (outcome: unknown): number => (outcome instanceof RateLimiterRes ? Math.max(1, outcome.msBeforeNext) : 0);

/**
 * What rate-limiter-flexible's Redis store does for one key (its
 * `rlflxIncr` script: start the window if none, add, read the ms left), for
 * many keys in one script run, on the very same keys: a budget spent one
 * key at a time by the library and many at a time here is one counter.
 * The admission spends the events of every address active in the last
 * quarter second at once; one call each was most of a cluster node's Redis
 * commands under load (one per address and flush, against one per turn
 * for routes and relays).
 */
const SPEND_EACH = 'sigserveSpendEach';
const SPEND_EACH_LUA = `
local out = {}
local duration = ARGV[1]
for i = 2, #ARGV, 2 do
  local key = ARGV[i]
  redis.call('set', key, 0, 'EX', duration, 'NX')
  local consumed = redis.call('incrby', key, ARGV[i + 1])
  local ttl = redis.call('pttl', key)
  if ttl == -1 then
    redis.call('expire', key, duration)
    ttl = 1000 * duration
  end
  out[#out + 1] = consumed
  out[#out + 1] = ttl
end
return out
`;

/** Keys of one script run at most: a run blocks Redis while it lasts. */
const SPEND_EACH_MAX = 500;

type SpendEachCall = (...args: (string | number)[]) => Promise<number[]>;

function isIoredis(client: unknown): client is Redis {
  return typeof (client as Partial<Redis> | null)?.defineCommand === 'function';
}

function defineSpendEach(redis: Redis): { redis: Redis; call: SpendEachCall } {
  if (!(SPEND_EACH in redis)) redis.defineCommand(SPEND_EACH, { numberOfKeys: 0, lua: SPEND_EACH_LUA });
  return { redis, call: (redis as unknown as Record<string, SpendEachCall>)[SPEND_EACH]!.bind(redis) };
}

/** [consumed, ms left] of each key, or a rejection when Redis is not ready, fails or takes longer than `timeoutMs`. */
async function spendInBatches(
  store: { redis: Redis; call: SpendEachCall },
  keys: readonly string[],
  points: readonly number[],
  durationSeconds: number,
  timeoutMs: number,
): Promise<[number, number][]> {
  if (store.redis.status !== 'ready') throw new Error('redis is not ready');
  const runs: Promise<number[]>[] = [];
  for (let start = 0; start < keys.length; start += SPEND_EACH_MAX) {
    const args: (string | number)[] = [durationSeconds];
    for (let i = start; i < Math.min(keys.length, start + SPEND_EACH_MAX); i++) args.push(keys[i]!, points[i]!);
    runs.push(store.call(...args));
  }
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error('redis took too long')), timeoutMs);
  });
  try {
    const replies = await Promise.race([Promise.all(runs), late]);
    return replies.flatMap((reply) => {
      const pairs: [number, number][] = [];
      for (let i = 0; i < reply.length; i += 2) pairs.push([Number(reply[i]), Number(reply[i + 1])]);
      return pairs;
    });
  } finally {
    clearTimeout(timer);
  }
}
