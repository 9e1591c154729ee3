/**
 * A token bucket per socket: `rate` events a second sustained, `burst` at
 * once. A socket that keeps sending after it ran dry is flooding.
 * @module
 */

export interface RateLimiterOptions {
  /** Tokens added per second. */
  rate: number;
  /** Bucket size: events allowed at once. */
  burst: number;
}

/**
 * Kept in whole numbers, so that V8 holds them in the object itself (a
 * fractional number costs a 16-byte box per field per socket): tokens in
 * thousandths, time in whole milliseconds (of `performance.now()`, whole
 * numbers that stay small for 24 days of uptime; past that they cost their
 * box again, nothing else).
 */
export interface Bucket {
  /** Thousandths of a token. */
  tokens: number;
  /** Whole milliseconds. */
  refilledAt: number;
  /** Events refused in a row. */
  refused: number;
}

export type Verdict = 'allow' | 'refuse' | 'flood';

const TOKEN = 1000;

export class RateLimiter {
  /** Thousandths of a token per ms: the rate per second. */
  readonly #perMs: number;
  readonly #burst: number;

  constructor(options: RateLimiterOptions) {
    this.#perMs = (options.rate * TOKEN) / 1000;
    this.#burst = options.burst;
  }

  bucket(now: number): Bucket {
    const bucket: Bucket = { tokens: 0, refilledAt: 0, refused: 0 };
    this.fill(bucket, now);
    return bucket;
  }

  /** Makes `bucket` a full one. */
  fill(bucket: Bucket, now: number): void {
    bucket.tokens = this.#burst * TOKEN;
    bucket.refilledAt = Math.floor(now);
    bucket.refused = 0;
  }

  /** Takes one token; refusing more events in a row than a full burst is a flood. */
  take(bucket: Bucket, now: number): Verdict {
    const at = Math.floor(now);
    bucket.tokens = Math.min(this.#burst * TOKEN, bucket.tokens + Math.floor((at - bucket.refilledAt) * this.#perMs));
    bucket.refilledAt = at;
    if (bucket.tokens >= TOKEN) {
      bucket.tokens -= TOKEN;
      bucket.refused = 0;
      return 'allow';
    }
    return this.refuse(bucket);
  }

  /** Counts an event refused by another limit (its address's budget) toward flooding. */
  refuse(bucket: Bucket): Verdict {
    bucket.refused++;
    return bucket.refused > this.#burst ? 'flood' : 'refuse';
  }
}
