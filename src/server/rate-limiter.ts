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

export interface Bucket {
  tokens: number;
  refilledAt: number;
  /** Events refused in a row. */
  refused: number;
}

export type Verdict = 'allow' | 'refuse' | 'flood';

export class RateLimiter {
  readonly #perMs: number;
  readonly #burst: number;

  constructor(options: RateLimiterOptions) {
    this.#perMs = options.rate / 1000;
    this.#burst = options.burst;
  }

  bucket(now: number): Bucket {
    return { tokens: this.#burst, refilledAt: now, refused: 0 };
  }

  /** Makes `bucket` a full one, as `bucket` would. */
  fill(bucket: Bucket, now: number): void {
    bucket.tokens = this.#burst;
    bucket.refilledAt = now;
    bucket.refused = 0;
  }

  /** Takes one token; refusing more events in a row than a full burst is a flood. */
  take(bucket: Bucket, now: number): Verdict {
    bucket.tokens = Math.min(this.#burst, bucket.tokens + (now - bucket.refilledAt) * this.#perMs);
    bucket.refilledAt = now;
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
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
