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
    const now = performance.now();
    let window = this.#windows.get(key);
    if (window === undefined || window[1] <= now) {
      this.#windows.set(key, (window = [0, now + this.#windowMs]));
      this.#sweep ??= setTimeout(() => this.#sweepEnded(), this.#windowMs).unref();
    }
    window[0] += points;
    return Promise.resolve(window[0] > this.#points ? Math.max(1, Math.ceil(window[1] - now)) : 0);
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
    const limiter = new RLWrapperTimeouts({ limiter: redis, timeoutMs: backend.timeoutMs ?? 500, insuranceLimiter: memory });
    return {
      async spend(key, points) {
        try {
          await limiter.consume(key, points);
          return 0;
        } catch (outcome) {
          if (outcome instanceof RateLimiterRes) return Math.max(1, outcome.msBeforeNext);
          // The store and the insurance both failed: let the client through.
          return 0;
        }
      },
    };
  };
}
