/**
 * Prometheus metrics (prom-client), on a registry of their own so several
 * servers in one process (as in tests) do not collide.
 * @module
 */
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import { LatencyHistogram, type LatencySeries } from './latency-histogram.js';
import type { ErrorCode } from '../protocol/errors.js';
import type { CoreStats } from '../core/signaling-core.js';

export class ServerMetrics {
  readonly registry = new Registry();
  readonly relayed: Counter<'kind'>;
  readonly errors: Counter<'code'>;
  readonly latency: LatencyHistogram<'launch' | 'answer'>;
  readonly slowConsumers: Counter;
  // recordRelay runs for every relayed message: the relayed counter is
  // brought up to date when read (prom-client's collect hook) rather than
  // through prom-client's label checks each time, and the latency histogram
  // is one kept by hand (src/server/latency-histogram.ts).
  #launches = 0;
  #answers = 0;
  readonly #latencyLaunch: LatencySeries;
  readonly #latencyAnswer: LatencySeries;

  constructor(stats: () => CoreStats) {
    collectDefaultMetrics({ register: this.registry, prefix: 'sigserve_' });
    new Gauge({
      name: 'sigserve_connected_sockets',
      help: 'Sockets connected to this node',
      registers: [this.registry],
      collect() {
        this.set(stats().sockets);
      },
    });
    new Gauge({
      name: 'sigserve_active_shares',
      help: 'Names shared by sockets of this node',
      registers: [this.registry],
      collect() {
        this.set(stats().shares);
      },
    });
    new Gauge({
      name: 'sigserve_active_routes',
      help: 'Joiner routes held by sockets of this node, as joiners',
      registers: [this.registry],
      collect() {
        this.set(stats().joinerRoutes);
      },
    });
    const metrics = this;
    this.relayed = new Counter({
      name: 'sigserve_relayed_total',
      help: 'Messages relayed to their recipient, by kind (launch, answer)',
      labelNames: ['kind'],
      registers: [this.registry],
      collect() {
        this.inc({ kind: 'launch' }, metrics.#launches);
        this.inc({ kind: 'answer' }, metrics.#answers);
        metrics.#launches = metrics.#answers = 0;
      },
    });
    this.errors = new Counter({
      name: 'sigserve_errors_total',
      help: 'signalingError events sent, by code',
      labelNames: ['code'],
      registers: [this.registry],
    });
    this.latency = new LatencyHistogram({
      name: 'sigserve_relay_latency_seconds',
      help: 'Time from receiving a launch or answer to emitting it to its recipient',
      labelName: 'kind',
      labelValues: ['launch', 'answer'],
      buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
      registers: [this.registry],
    });
    this.slowConsumers = new Counter({
      name: 'sigserve_slow_consumers_total',
      help: 'Sockets disconnected because they left more than MAX_BUFFERED_BYTES unread',
      registers: [this.registry],
    });
    for (const kind of ['launch', 'answer']) {
      this.relayed.inc({ kind }, 0);
    }
    this.#latencyLaunch = this.latency.series('launch');
    this.#latencyAnswer = this.latency.series('answer');
  }

  recordRelay(kind: 'launch' | 'answer', latencyMs: number): void {
    if (kind === 'launch') {
      this.#launches++;
      this.#latencyLaunch.observe(Math.max(0, latencyMs) / 1000);
    } else {
      this.#answers++;
      this.#latencyAnswer.observe(Math.max(0, latencyMs) / 1000);
    }
  }

  recordError(code: ErrorCode): void {
    this.errors.inc({ code });
  }
}
