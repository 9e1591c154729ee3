/**
 * The load generator's scenarios. Each runs inside one process (a worker
 * pinned to the generator core, or a test), bounded in connections and time:
 *
 * - `runPairs`: N sharer/joiner pairs, each looping handshakes back to back
 *   (closed loop) for a warm-up, then a measured window. A handshake: the
 *   joiner sends a ~1.6 KB offer addressed to its sharer, the sharer replies
 *   with a ~1.2 KB answer; done when the joiner holds the answer. With
 *   `trickle`, each side also sends 8 candidates and the handshake is done
 *   when both sides hold everything. Every payload received is checked.
 * - `openIdle`: opens many connections and holds them, for memory figures.
 * - `runChurn`: opens connections as fast as the server accepts them, each
 *   closed as soon as the server has accepted it at protocol level.
 * @module
 */
import { runQueueSeconds, totalCpuSeconds } from './procs.js';
import { pairPayloads, TRICKLE_CANDIDATES, type PairPayloads } from './sdp.js';
import { connect, type Protocol, type SignalConn } from './wire.js';

/** Where a scenario connects: sharers to one URL, joiners to another (two nodes in cluster mode). */
export interface Target {
  protocol: Protocol;
  sharerUrl: string;
  joinerUrl: string;
  /** Idle and churn connections go round-robin over these. */
  urls: string[];
}

/** Source address number `i` of worker `worker`, spread over 127.0.0.0/8 (never .0 or .255). */
export function sourceAddress(worker: number, i: number): string {
  return `127.${10 + (worker % 240)}.${Math.floor(i / 254) % 256}.${1 + (i % 254)}`;
}

export interface PairsJob {
  target: Target;
  pairs: number;
  warmupMs: number;
  measureMs: number;
  trickle: boolean;
  /** Server processes whose CPU time the window is charged with. */
  serverPids: number[];
  /** Extra processes measured apart (redis-server in cluster mode). */
  sidePids?: number[];
  /** Makes share names and ids unique across jobs against one server. */
  runId: string;
  /** Worker number, for source addresses. @default 0 */
  worker?: number;
  /** Longest wait for handshakes still in flight after the window. @default 10000 */
  drainMs?: number;
}

export interface LatencySummary {
  p50: number;
  p99: number;
  max: number;
  mean: number;
}

export interface PairsResult {
  pairs: number;
  trickle: boolean;
  /** Handshakes completed inside the measured window. */
  handshakes: number;
  seconds: number;
  perSecond: number;
  /** Milliseconds from the joiner sending its offer to the handshake being complete. */
  latencyMs: LatencySummary;
  serverCpuSeconds: number;
  /** Server CPU seconds per 10,000 handshakes. */
  cpuPer10k: number;
  sideCpuSeconds: number;
  /** Share of one core the generator process used during the window (1 = saturated). */
  generatorLoad: number;
  /** Share of the window the server's main thread waited for its core, taken by other work. */
  serverWait: number;
  /** The same for the generator. */
  generatorWait: number;
  /** Messages received with the wrong content or for the wrong handshake. */
  badPayloads: number;
  /** Error events from the server (seed: signalingError). */
  serverErrors: number;
  /** Handshakes that never completed after the window closed. */
  lost: number;
  connectMs: number;
}

interface Pair {
  index: number;
  sharer: SignalConn;
  joiner: SignalConn;
  address: string;
  payloads: PairPayloads;
  hid: string;
  seq: number;
  startedAt: number;
  sharerGot: number;
  joinerGot: number;
  busy: boolean;
}

/** Opens `count` connections, `concurrency` at a time; rejects on the first failure. */
async function openMany(count: number, concurrency: number, open: (i: number) => SignalConn): Promise<SignalConn[]> {
  const conns: SignalConn[] = new Array(count);
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < count) {
      const i = next++;
      const conn = open(i);
      conns[i] = conn;
      await conn.ready;
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.min(concurrency, count) }, lane));
  } catch (error) {
    for (const conn of conns) conn?.close();
    throw error;
  }
  return conns;
}

function summarize(samples: number[]): LatencySummary {
  if (samples.length === 0) return { p50: NaN, p99: NaN, max: NaN, mean: NaN };
  const sorted = Float64Array.from(samples).sort();
  const at = (q: number): number => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
  let sum = 0;
  for (const v of sorted) sum += v;
  return { p50: at(0.5), p99: at(0.99), max: sorted[sorted.length - 1]!, mean: sum / sorted.length };
}

async function closeAll(conns: SignalConn[], timeoutMs = 5000): Promise<void> {
  for (const conn of conns) conn.close();
  await Promise.race([Promise.all(conns.map((c) => c.closed)), new Promise((r) => setTimeout(r, timeoutMs).unref())]);
}

/**
 * N pairs looping handshakes against one server, which can be paused and
 * resumed: `measure` runs the loop for a while and adds what the window
 * saw to the totals `result` reports, so one load can be measured in one
 * window (runPairs) or in slices taken turn about with other servers'
 * loads (the orchestrator's sequential windows).
 */
export class PairsLoad {
  readonly #job: PairsJob;
  readonly #pairs: Pair[];
  readonly #opened: SignalConn[];
  readonly #connectMs: number;
  #running = false;
  #measuring = false;
  #handshakes = 0;
  #badPayloads = 0;
  #serverErrors = 0;
  readonly #latencies: number[] = [];
  #seconds = 0;
  #serverCpu = 0;
  #sideCpu = 0;
  #genCpu = 0;
  #serverWait = 0;
  #generatorWait = 0;
  #lost = 0;

  private constructor(job: PairsJob, opened: SignalConn[], pairs: Pair[], connectMs: number) {
    this.#job = job;
    this.#opened = opened;
    this.#pairs = pairs;
    this.#connectMs = connectMs;
    const need = 1 + (job.trickle ? TRICKLE_CANDIDATES : 0);
    const settle = (pair: Pair): void => {
      if (pair.sharerGot < need || pair.joinerGot < need) return;
      if (this.#measuring) {
        this.#handshakes++;
        this.#latencies.push(performance.now() - pair.startedAt);
      }
      pair.busy = false;
      if (this.#running) this.#start(pair);
    };
    for (const pair of pairs) {
      const { payloads } = pair;
      pair.sharer.onMessage = (hid, from, data) => {
        if (hid !== pair.hid || !pair.busy) {
          this.#badPayloads++;
          return;
        }
        const k = pair.sharerGot++;
        if (data !== (k === 0 ? payloads.offer : payloads.joinerCandidates[k - 1])) this.#badPayloads++;
        if (k === 0) {
          pair.sharer.toJoiner(from, hid, 'answer', payloads.answer);
          if (job.trickle) for (const c of payloads.sharerCandidates) pair.sharer.toJoiner(from, hid, 'candidate', c);
        }
        settle(pair);
      };
      pair.joiner.onMessage = (hid, _from, data) => {
        if ((hid !== undefined && hid !== pair.hid) || !pair.busy) {
          this.#badPayloads++;
          return;
        }
        const k = pair.joinerGot++;
        if (data !== (k === 0 ? payloads.answer : payloads.sharerCandidates[k - 1])) this.#badPayloads++;
        settle(pair);
      };
      pair.sharer.onError = pair.joiner.onError = () => {
        this.#serverErrors++;
      };
    }
  }

  /** Connects the pairs and shares each sharer's address; nothing loops yet. */
  static async open(job: PairsJob): Promise<PairsLoad> {
    const { target } = job;
    const worker = job.worker ?? 0;
    const connectStart = performance.now();
    const opened = await openMany(job.pairs * 2, 64, (i) => {
      const pair = i >> 1;
      const role = i & 1 ? 'j' : 's';
      return connect(target.protocol, {
        url: role === 's' ? target.sharerUrl : target.joinerUrl,
        id: `${job.runId}-${role}${pair}`,
        localAddress: sourceAddress(worker, i),
      });
    });
    const pairs: Pair[] = [];
    for (let index = 0; index < job.pairs; index++) {
      const sharer = opened[index * 2]!;
      const joiner = opened[index * 2 + 1]!;
      const address = `${job.runId}-s${index}`;
      await sharer.register(address);
      pairs.push({ index, sharer, joiner, address, payloads: pairPayloads(index), hid: '', seq: 0, startedAt: 0, sharerGot: 0, joinerGot: 0, busy: false });
    }
    return new PairsLoad(job, opened, pairs, performance.now() - connectStart);
  }

  #start(pair: Pair): void {
    pair.busy = true;
    pair.hid = `${this.#job.runId}.${pair.index}.${pair.seq++}`;
    pair.sharerGot = 0;
    pair.joinerGot = 0;
    pair.startedAt = performance.now();
    pair.joiner.toSharer(pair.address, pair.hid, 'offer', pair.payloads.offer);
    if (this.#job.trickle) for (const c of pair.payloads.joinerCandidates) pair.joiner.toSharer(pair.address, pair.hid, 'candidate', c);
  }

  /**
   * Loops for `warmMs` unmeasured, then `measureMs` measured, then stops
   * starting handshakes and waits (at most drainMs) for those in flight;
   * any still in flight then count as lost, and their pairs stay out.
   */
  async measure(warmMs: number, measureMs: number): Promise<void> {
    const job = this.#job;
    this.#running = true;
    for (const pair of this.#pairs) if (!pair.busy) this.#start(pair);
    await sleep(warmMs);
    const sidePids = job.sidePids ?? [];
    const cpu0 = totalCpuSeconds(job.serverPids);
    const side0 = totalCpuSeconds(sidePids);
    const gen0 = process.cpuUsage();
    const wait0 = job.serverPids.map((pid) => runQueueSeconds(pid));
    const genWait0 = runQueueSeconds('self');
    const t0 = performance.now();
    if (this.#seconds === 0) {
      // What went wrong while connections and code warmed up is not the server's steady state.
      this.#badPayloads = 0;
      this.#serverErrors = 0;
    }
    this.#measuring = true;
    await sleep(measureMs);
    this.#measuring = false;
    const seconds = (performance.now() - t0) / 1000;
    this.#seconds += seconds;
    this.#serverCpu += totalCpuSeconds(job.serverPids) - cpu0;
    this.#sideCpu += totalCpuSeconds(sidePids) - side0;
    const gen = process.cpuUsage(gen0);
    this.#genCpu += (gen.user + gen.system) / 1e6;
    this.#serverWait += Math.max(...job.serverPids.map((pid, i) => runQueueSeconds(pid) - wait0[i]!));
    this.#generatorWait += runQueueSeconds('self') - genWait0;
    this.#running = false;
    const drainUntil = Date.now() + (job.drainMs ?? 10000);
    while (this.#pairs.some((p) => p.busy) && Date.now() < drainUntil) await sleep(5);
    this.#lost = this.#pairs.filter((p) => p.busy).length;
  }

  /** Milliseconds the pairs took to connect and share. */
  get connectMs(): number {
    return this.#connectMs;
  }

  /** What every measured window so far adds up to. */
  result(): PairsResult {
    const seconds = this.#seconds;
    return {
      pairs: this.#job.pairs,
      trickle: this.#job.trickle,
      handshakes: this.#handshakes,
      seconds,
      perSecond: this.#handshakes / seconds,
      latencyMs: summarize(this.#latencies),
      serverCpuSeconds: this.#serverCpu,
      cpuPer10k: this.#handshakes > 0 ? (this.#serverCpu / this.#handshakes) * 10000 : NaN,
      sideCpuSeconds: this.#sideCpu,
      generatorLoad: this.#genCpu / seconds,
      serverWait: this.#serverWait / seconds,
      generatorWait: this.#generatorWait / seconds,
      badPayloads: this.#badPayloads,
      serverErrors: this.#serverErrors,
      lost: this.#lost,
      connectMs: this.#connectMs,
    };
  }

  close(): Promise<void> {
    return closeAll(this.#opened);
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** The throughput / latency / CPU scenario, in one window: warm-up, then the measured window. */
export async function runPairs(job: PairsJob): Promise<PairsResult> {
  const load = await PairsLoad.open(job);
  await load.measure(job.warmupMs, job.measureMs);
  const result = load.result();
  await load.close();
  return result;
}

export interface IdleJob {
  target: Target;
  count: number;
  runId: string;
  worker: number;
  /** Connections opening at once. @default 100 */
  concurrency?: number;
}

export interface IdleHandle {
  opened: number;
  ms: number;
  close(): Promise<void>;
}

/** Opens `count` idle connections spread over source addresses and holds them until closed. */
export async function openIdle(job: IdleJob): Promise<IdleHandle> {
  const t0 = performance.now();
  const { target } = job;
  const conns = await openMany(job.count, job.concurrency ?? 100, (i) =>
    connect(target.protocol, {
      url: target.urls[i % target.urls.length]!,
      id: `${job.runId}-i${job.worker}-${i}`,
      localAddress: sourceAddress(job.worker, i),
      timeoutMs: 60000,
    }),
  );
  return { opened: conns.length, ms: performance.now() - t0, close: () => closeAll(conns, 20000) };
}

export interface ChurnJob {
  target: Target;
  durationMs: number;
  /** Connections being opened at once. @default 32 */
  concurrency?: number;
  /** Hard cap on connections opened. @default 200000 */
  maxConnections?: number;
  serverPids: number[];
  runId: string;
  worker: number;
}

export interface ChurnResult {
  connections: number;
  seconds: number;
  perSecond: number;
  serverCpuSeconds: number;
  /** Server CPU milliseconds per connection (accept, protocol handshake and close). */
  cpuMsPerConnection: number;
  failures: number;
  generatorLoad: number;
}

/** New connections per second: open, wait for the protocol-level accept, close, repeat. */
export async function runChurn(job: ChurnJob): Promise<ChurnResult> {
  const { target } = job;
  const max = job.maxConnections ?? 200000;
  const deadline = performance.now() + job.durationMs;
  let connections = 0;
  let failures = 0;
  let n = 0;
  const closing = new Set<Promise<void>>();
  const cpu0 = totalCpuSeconds(job.serverPids);
  const gen0 = process.cpuUsage();
  const t0 = performance.now();
  const lane = async (): Promise<void> => {
    while (performance.now() < deadline && n < max) {
      const i = n++;
      const conn = connect(target.protocol, {
        url: target.urls[i % target.urls.length]!,
        id: `${job.runId}-c${i}`,
        localAddress: sourceAddress(job.worker, i % 60000),
      });
      try {
        await conn.ready;
        connections++;
      } catch {
        failures++;
      }
      conn.close();
      const closed = conn.closed.then(() => {
        closing.delete(closed);
      });
      closing.add(closed);
      // Bounded: never more than a few thousand sockets half-closed at once.
      while (closing.size > 2000) await Promise.race(closing);
    }
  };
  await Promise.all(Array.from({ length: job.concurrency ?? 32 }, lane));
  const seconds = (performance.now() - t0) / 1000;
  const serverCpuSeconds = totalCpuSeconds(job.serverPids) - cpu0;
  const gen = process.cpuUsage(gen0);
  await Promise.race([Promise.all(closing), new Promise((r) => setTimeout(r, 10000).unref())]);
  return {
    connections,
    seconds,
    perSecond: connections / seconds,
    serverCpuSeconds,
    cpuMsPerConnection: connections > 0 ? (serverCpuSeconds / connections) * 1000 : NaN,
    failures,
    generatorLoad: (gen.user + gen.system) / 1e6 / seconds,
  };
}
