/**
 * A Prometheus histogram with one label, for observations made on the
 * relay's hot path (every relayed message).
 *
 * prom-client's Histogram checks and hashes the label set on every
 * observation, even through a bound child (an object and a string per
 * call): about 1.5 % of the server's CPU per handshake in the benchmark.
 * Here each label value keeps its own plain counters, found once, and the
 * registry reads them through the same `get()` contract prom-client's own
 * metrics fulfil (name, help, type, values with metricName and labels), so
 * /metrics prints exactly what a prom-client Histogram would print
 * (test/latency-histogram.test.ts compares the two).
 * @module
 */
import type { Metric, Registry } from 'prom-client';

/** Counts first observations, so series are listed in the order they began (as prom-client lists them). */
let firsts = 0;

/** The counters of one label value. */
export class LatencySeries {
  /** Observations per bucket, not cumulative; the last one is +Inf. */
  readonly counts: Float64Array;
  sum = 0;
  count = 0;
  /** When its first observation (since a reset) came, among all series. */
  first = 0;

  constructor(private readonly bounds: readonly number[]) {
    this.counts = new Float64Array(bounds.length + 1);
  }

  observe(value: number): void {
    const bounds = this.bounds;
    let i = 0;
    while (i < bounds.length && value > bounds[i]!) i++;
    this.counts[i]!++;
    this.sum += value;
    if (this.count++ === 0) this.first = ++firsts;
  }

  reset(): void {
    this.counts.fill(0);
    this.sum = 0;
    this.count = 0;
  }
}

interface Sample {
  labels: Record<string, string | number>;
  value: number;
  metricName: string;
  /** prom-client's buckets carry one (exemplars are off: null). */
  exemplar?: null;
}

export interface LatencyHistogramOptions<L extends string> {
  name: string;
  help: string;
  labelName: string;
  /** Label values, each with its series from the start (prom-client would show a value only once observed). */
  labelValues: readonly L[];
  /** Upper bounds, ascending. */
  buckets: readonly number[];
  registers: Registry[];
}

export class LatencyHistogram<L extends string> {
  readonly name: string;
  readonly help: string;
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  readonly #labelName: string;
  readonly #bounds: readonly number[];
  readonly #series = new Map<L, LatencySeries>();

  constructor(options: LatencyHistogramOptions<L>) {
    this.name = options.name;
    this.help = options.help;
    this.#labelName = options.labelName;
    this.#bounds = [...options.buckets];
    for (const value of options.labelValues) this.#series.set(value, new LatencySeries(this.#bounds));
    for (const registry of options.registers) registry.registerMetric(this as unknown as Metric);
  }

  /** The series of one label value, to observe into directly. */
  series(labelValue: L): LatencySeries {
    const series = this.#series.get(labelValue);
    if (!series) throw new Error(`${this.name}: unknown ${this.#labelName} "${labelValue}"`);
    return series;
  }

  /** What prom-client's registry reads, in the order a prom-client Histogram gives it. */
  async get(): Promise<{ name: string; help: string; type: 'histogram'; aggregator: 'sum'; values: Sample[] }> {
    const values: Sample[] = [];
    const bucket = `${this.name}_bucket`;
    const begun = [...this.#series].filter(([, series]) => series.count > 0).sort(([, a], [, b]) => a.first - b.first);
    for (const [labelValue, series] of begun) {
      let cumulative = 0;
      this.#bounds.forEach((bound, i) => {
        cumulative += series.counts[i]!;
        values.push({ labels: { le: bound, [this.#labelName]: labelValue }, value: cumulative, metricName: bucket, exemplar: null });
      });
      values.push({ labels: { le: '+Inf', [this.#labelName]: labelValue }, value: series.count, metricName: bucket, exemplar: null });
      values.push({ labels: { [this.#labelName]: labelValue }, value: series.sum, metricName: `${this.name}_sum` });
      values.push({ labels: { [this.#labelName]: labelValue }, value: series.count, metricName: `${this.name}_count` });
    }
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }

  /** As prom-client's `reset()` (Registry.resetMetrics calls it). */
  reset(): void {
    for (const series of this.#series.values()) series.reset();
  }
}
