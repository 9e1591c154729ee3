/**
 * The hand-kept latency histogram against prom-client's own Histogram: for
 * the same observations, the registry prints the same text and the same
 * JSON, before and after a reset.
 * @module
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { Histogram, Registry } from 'prom-client';
import { LatencyHistogram } from '../src/server/latency-histogram.js';

const BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1];
const KINDS = ['launch', 'answer'] as const;

function pair(): { ours: LatencyHistogram<'launch' | 'answer'>; theirs: Histogram<'kind'>; mine: Registry; reference: Registry } {
  const mine = new Registry();
  const reference = new Registry();
  const common = { name: 'test_latency_seconds', help: 'Latency, for the test' };
  const ours = new LatencyHistogram({ ...common, labelName: 'kind', labelValues: KINDS, buckets: BUCKETS, registers: [mine] });
  const theirs = new Histogram({ ...common, labelNames: ['kind'], buckets: BUCKETS, registers: [reference] });
  return { ours, theirs, mine, reference };
}

describe('LatencyHistogram', () => {
  it('prints what a prom-client Histogram prints for the same observations', async () => {
    // Bucket bounds themselves, values between them, zero and past the last bound.
    const value = fc.oneof(fc.constantFrom(0, ...BUCKETS, 2, 30), fc.double({ min: 0, max: 3, noNaN: true }));
    await fc.assert(
      fc.asyncProperty(fc.array(fc.tuple(fc.constantFrom(...KINDS), value), { maxLength: 60 }), async (observations) => {
        const { ours, theirs, mine, reference } = pair();
        for (const [kind, seconds] of observations) {
          ours.series(kind).observe(seconds);
          theirs.labels(kind).observe(seconds);
        }
        assert.equal(await mine.metrics(), await reference.metrics());
        const json = async (registry: Registry): Promise<unknown> => JSON.parse(JSON.stringify(await registry.getMetricsAsJSON()));
        assert.deepEqual(await json(mine), await json(reference));
        mine.resetMetrics();
        reference.resetMetrics();
        assert.equal(await mine.metrics(), await reference.metrics());
      }),
      { numRuns: 200 },
    );
  });

  it('refuses a label value it was not made with', () => {
    const { ours } = pair();
    assert.throws(() => ours.series('other' as 'launch'), /unknown kind "other"/);
  });
});
