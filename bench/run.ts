/**
 * `npm run bench`: every server side by side, same work, same run.
 *
 *   npm run bench                  full run (3 repetitions, about 50 minutes)
 *   npm run bench -- --quick       development run (one repetition, a couple of minutes)
 *
 * Options: --reps N, --only ws,peerjs,socketio,sigserve,sigserve-sio,sigserve-cluster,
 * --pairs 1,50,500, --scenarios pairs,trickle,churn,duel,idle (for profiling one
 * thing at a time), --out DIR (default bench/), --cpu-prof DIR (profile
 * every server process), --server-flags "FLAGS" (Node flags for every server
 * process alike), --generator-flags "FLAGS" (Node flags for every generator
 * worker, e.g. to profile the generator), --server-log DIR (keep every server's output there, e.g.
 * with --server-flags=--trace-gc; BENCH_LOG_LEVEL=debug in the environment
 * makes sigserve log at debug there), --heap-snapshot DIR (snapshot every server at the
 * idle point), --idle N (idle connections, default 10,000; 2,000 with
 * --quick), --warmup-ms N and --measure-ms N (the pairs and trickle windows,
 * default 8,000 and 8,000). --scenarios scale (part of the full run): a cluster of
 * --scale-nodes N sigserve nodes (default 6) behind Redis holds
 * --scale-total N idle connections (default 100,000) while pairs relay
 * handshakes across nodes; written to scale.md, which RESULTS.md includes.
 * --slices N: the pairs and trickle windows are measured in N slices taken
 * turn about by the servers (default 8, 4 with --quick; 1: one window each).
 * --against DIR (with --scenarios duel): sigserve as built in another
 * checkout DIR becomes one more duel rival, for an A/B comparison of two
 * versions at the same moment; the log lines give the ratios. With
 * --against-cluster that build runs as a two-node cluster; with
 * --duel-base sigserve-cluster (and --only sigserve-cluster) this build's
 * cluster is the one set against it, so the two clusters share the core.
 * See bench/profile.ts to read the profiles.
 *
 * Servers run pinned to core 0, generator workers to core 1. Everything is
 * bounded: connections per scenario, time per worker, time for the whole
 * run; every process started here is ended by PID.
 * @module
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import type { ChurnResult, PairsResult } from './lib/generator.js';
import { GENERATOR_CPU, keepServerOutput, killAll, ROOT, sleep, track } from './lib/procs.js';
import { renderPng, svgSize, writeResults, type RunInfo, type ServerRun } from './lib/report.js';
import { ClusterUnavailable, DUEL_RIVALS, otherBuild, RAISED_LIMITS, SERVERS, type RunningTarget, type ServerKey, type ServerSpec } from './lib/targets.js';
import type { WorkerJob, WorkerReply, WorkerRequest } from './lib/worker.js';
import { runScale, writeScale } from './lib/scale.js';

const WORKER = join(ROOT, 'bench', 'lib', 'worker.ts');
/** One generator process holds at most this many connections (the limit is 20,000 descriptors). */
const PER_WORKER = 5000;

const { values: flags } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    reps: { type: 'string' },
    only: { type: 'string' },
    out: { type: 'string' },
    pairs: { type: 'string' },
    scenarios: { type: 'string' },
    'cpu-prof': { type: 'string' },
    'heap-snapshot': { type: 'string' },
    'server-flags': { type: 'string' },
    'server-log': { type: 'string' },
    'generator-flags': { type: 'string' },
    slices: { type: 'string' },
    idle: { type: 'string' },
    'scale-total': { type: 'string' },
    'scale-nodes': { type: 'string' },
    'warmup-ms': { type: 'string' },
    'measure-ms': { type: 'string' },
    against: { type: 'string' },
    'against-cluster': { type: 'boolean', default: false },
    'duel-base': { type: 'string' },
  },
  strict: true,
});

const quick = flags.quick ?? false;
const settings = {
  reps: Number(flags.reps ?? (quick ? 1 : 3)),
  pairs: flags.pairs ? flags.pairs.split(',').map(Number) : [1, 50, 500],
  tricklePairs: 50,
  // Long enough for every server to finish tiering up: cluster nodes run their Redis client's
  // code once per batch, not per message, and with 3 s V8 still optimized it in the window.
  warmupMs: Number(flags['warmup-ms'] ?? (quick ? 1000 : 8000)),
  measureMs: Number(flags['measure-ms'] ?? (quick ? 2500 : 8000)),
  // The sequential pairs and trickle windows are measured in this many slices, taken turn about by the servers.
  slices: Math.max(1, Number(flags.slices ?? (quick ? 4 : 8))),
  // Before each slice after a server's first, its pairs loop this long unmeasured again.
  rewarmMs: 500,
  churnMs: quick ? 2000 : 6000,
  idle: flags.idle ? Number(flags.idle) : quick ? 2000 : 10000,
  // Per server process: near what one process can hold under a 20,000-descriptor limit.
  idleMax: quick ? 0 : 19000,
  scaleTotal: Number(flags['scale-total'] ?? 100000),
  scaleNodes: Number(flags['scale-nodes'] ?? 6),
  // The whole run stops by itself after this.
  limitMs: (quick ? 15 : 150) * 60_000,
};
const scenarios = new Set((flags.scenarios ?? (quick ? 'pairs,trickle,churn,duel,idle' : 'pairs,trickle,churn,duel,idle,scale')).split(','));
/** Scenarios run once per server; `scale` runs once per run, on its own cluster. */
const perServer = ['pairs', 'trickle', 'churn', 'duel', 'idle'].some((s) => scenarios.has(s));
const outDir = resolve(flags.out ?? join(ROOT, 'bench'));
const only = flags.only ? new Set(flags.only.split(',') as ServerKey[]) : undefined;
const nodeFlags = [
  ...(flags['cpu-prof'] ? ['--cpu-prof', '--cpu-prof-dir', resolve(flags['cpu-prof'])] : []),
  // Extra Node flags for every server process alike, e.g. --server-flags=--max-semi-space-size=64 (NODE_OPTIONS does not reach them).
  ...(flags['server-flags'] ? flags['server-flags'].split(' ').filter(Boolean) : []),
];
// Extra Node flags for the generator workers, e.g. --generator-flags='--cpu-prof --cpu-prof-dir=DIR'.
const generatorFlags = flags['generator-flags'] ? flags['generator-flags'].split(' ').filter(Boolean) : [];
const snapshotDir = flags['heap-snapshot'] ? resolve(flags['heap-snapshot']) : undefined;
if (flags['server-log']) {
  mkdirSync(resolve(flags['server-log']), { recursive: true });
  keepServerOutput(resolve(flags['server-log']));
}

const log = (text: string): void => {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${text}\n`);
};

/** Starts a generator worker pinned to the generator core. */
class Worker {
  readonly child: ChildProcess;
  readonly #queue: WorkerReply[] = [];
  #waiting: ((reply: WorkerReply) => void) | undefined;

  constructor() {
    const env = { ...process.env };
    delete env['NODE_OPTIONS'];
    this.child = track(spawn('taskset', ['-c', GENERATOR_CPU, process.execPath, ...generatorFlags, '--import', 'tsx', WORKER], { cwd: ROOT, env, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }));
    this.child.on('message', (reply: WorkerReply) => this.#push(reply));
    this.child.on('exit', (code) => this.#push({ type: 'error', message: `worker exited (${code})` }));
    this.child.on('error', (error) => this.#push({ type: 'error', message: error.message }));
  }

  #push(reply: WorkerReply): void {
    const waiting = this.#waiting;
    if (waiting) {
      this.#waiting = undefined;
      waiting(reply);
    } else {
      this.#queue.push(reply);
    }
  }

  send(request: WorkerRequest): void {
    if (this.child.connected) this.child.send(request);
  }

  next(): Promise<WorkerReply> {
    const queued = this.#queue.shift();
    if (queued) return Promise.resolve(queued);
    return new Promise((resolve) => (this.#waiting = resolve));
  }

  async expect<T extends WorkerReply['type']>(type: T): Promise<Extract<WorkerReply, { type: T }>> {
    const reply = await this.next();
    if (reply.type === 'error') throw new Error(reply.message);
    if (reply.type !== type) throw new Error(`worker sent ${reply.type}, expected ${type}`);
    return reply as Extract<WorkerReply, { type: T }>;
  }

  kill(): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
  }

  /** Resolves when the worker has exited, or after `ms`. */
  exited(ms: number): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.child.once('exit', () => {
        clearTimeout(timer);
        resolve();
      });
    });
  }
}

async function runJob<T>(job: WorkerJob, limitMs: number): Promise<T> {
  const worker = new Worker();
  try {
    worker.send({ type: 'run', job, limitMs });
    const { result } = await worker.expect('result');
    // A worker exits by itself once it has replied; a moment for that lets
    // --generator-flags=--cpu-prof write its profile.
    if (generatorFlags.length > 0) await worker.exited(10_000);
    return result as T;
  } finally {
    worker.kill();
  }
}

let jobCounter = 0;
const runId = (): string => `b${(jobCounter++).toString(36)}`;

function add(run: ServerRun, metric: string, value: number): void {
  (run.samples[metric] ??= []).push(value);
}

function recordPairs(run: ServerRun, prefix: string, suffix: string, r: PairsResult): void {
  const name = (m: string): string => (prefix ? `${prefix}.${m}` : `${m}${suffix}`);
  add(run, name('tput'), r.perSecond);
  add(run, name('p50'), r.latencyMs.p50);
  add(run, name('p99'), r.latencyMs.p99);
  add(run, name('max'), r.latencyMs.max);
  add(run, name('cpu'), r.cpuPer10k);
  add(run, name('side'), r.handshakes > 0 ? (r.sideCpuSeconds / r.handshakes) * 10000 : NaN);
  add(run, name('gen'), r.generatorLoad);
  add(run, name('swait'), r.serverWait);
  add(run, name('gwait'), r.generatorWait);
  add(run, name('bad'), r.badPayloads);
  add(run, name('err'), r.serverErrors);
  add(run, name('lost'), r.lost);
}

/**
 * Memory per idle connection, on a fresh server process so the baseline is
 * not inflated by earlier scenarios: a few connections are opened and closed
 * first (so lazily loaded code and pools are in the baseline), then after a
 * forced GC the baseline is read, `total` connections are opened over several
 * workers, and memory is read again.
 */
async function idleScenario(spec: ServerSpec, run: ServerRun, count: (processes: number) => number, prefix: string): Promise<void> {
  const running = await spec.start({ nodeFlags });
  const total = count(running.processes.length);
  const workers: Worker[] = [];
  try {
    await runJob<ChurnResult>({ kind: 'churn', target: running.target, durationMs: 300, maxConnections: 200, serverPids: [], runId: runId(), worker: 60 }, 60_000);
    await sleep(500);
    const before = await running.memory();
    const count = Math.ceil(total / PER_WORKER);
    const id = runId();
    for (let w = 0; w < count; w++) {
      const worker = new Worker();
      workers.push(worker);
      const share = Math.min(PER_WORKER, total - w * PER_WORKER);
      worker.send({ type: 'run', job: { kind: 'idle', target: running.target, count: share, runId: `${id}w${w}`, worker: w }, limitMs: 10 * 60_000 });
    }
    const t0 = Date.now();
    const opened = await Promise.all(workers.map((w) => w.expect('opened')));
    const n = opened.reduce((s, o) => s + o.opened, 0);
    log(`  ${spec.key}: ${n} idle connections open in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    await sleep(1000);
    const after = await running.memory();
    add(run, `${prefix}.rss`, (after.rss - before.rss) / n);
    add(run, `${prefix}.heap`, (after.heapUsed - before.heapUsed) / n);
    add(run, `${prefix}.external`, (after.external - before.external) / n);
    add(run, `${prefix}.rssTotal`, after.rss);
    add(run, `${prefix}.n`, n);
    log(`  ${spec.key} idle ${n}: ${((after.rss - before.rss) / n / 1024).toFixed(2)} KB RSS, ${((after.heapUsed - before.heapUsed) / n / 1024).toFixed(2)} KB heap per connection`);
    if (snapshotDir && prefix === 'idle') {
      mkdirSync(snapshotDir, { recursive: true });
      for (const [i, p] of running.processes.entries()) {
        await p.heapSnapshot(join(snapshotDir, `${spec.key}-${i}-${n}.heapsnapshot`));
      }
    }
    for (const w of workers) w.send({ type: 'close' });
    await Promise.all(workers.map((w) => w.expect('result')));
  } finally {
    for (const w of workers) w.kill();
    await running.stop();
  }
}

/** A server of one repetition, started for the window scenarios. */
interface Live {
  spec: ServerSpec;
  run: ServerRun;
  running: RunningTarget;
  serverPids: number[];
  /** Set when a server process died: its remaining windows of the repetition are skipped. */
  aborted: boolean;
}

/** One pairs (or trickle) window against a running server, in a generator worker of its own. */
function pairsWindow(l: Live, pairs: number, trickle: boolean, sidePids = l.running.sidePids): Promise<PairsResult> {
  return runJob<PairsResult>(
    { kind: 'pairs', target: l.running.target, pairs, warmupMs: settings.warmupMs, measureMs: settings.measureMs, trickle, serverPids: l.serverPids, sidePids, runId: runId() },
    settings.warmupMs + settings.measureMs + 120_000,
  );
}

/** One new-connections window against a running server; `worker` picks its source addresses. */
function churnWindow(l: Live, worker: number): Promise<ChurnResult> {
  return runJob<ChurnResult>({ kind: 'churn', target: l.running.target, durationMs: settings.churnMs, serverPids: l.serverPids, runId: runId(), worker }, settings.churnMs + 120_000);
}

/**
 * A sequential pairs (or trickle) window for every live server, in slices
 * taken turn about: each server's pairs connect first; then, round after
 * round, one server at a time loops handshakes for a slice (its first slice
 * after the full warm-up, later ones after a short re-warm) while the
 * others' pairs wait, and the slices add up to one measured window per
 * server. Each server still has the server core to itself while it is
 * measured, but its figures and its rivals' are taken in the same minutes,
 * interleaved second by second: on this VM the same server's CPU per
 * handshake moved by up to 2.4× between back-to-back windows a minute
 * apart. The order rotates each round. `--slices 1` gives one window per
 * server, back to back, as before.
 */
async function slicedWindow(live: Live[], pairs: number, trickle: boolean, rep: number, what: string): Promise<Map<Live, PairsResult>> {
  const loads: { l: Live; worker: Worker; failed: boolean }[] = [];
  const results = new Map<Live, PairsResult>();
  const sliceMs = settings.measureMs / settings.slices;
  const limitMs = live.length * (settings.warmupMs + settings.measureMs + settings.slices * (settings.rewarmMs + 10_000)) + 120_000;
  const fail = (entry: { l: Live; failed: boolean }, error: unknown): void => {
    entry.failed = true;
    noteFailure(entry.l.run, entry.l.spec.key, rep, `${what} failed: ${(error as Error).message.split('\n')[0]}`);
  };
  try {
    for (const l of live) {
      if (l.aborted) continue;
      const entry = { l, worker: new Worker(), failed: false };
      loads.push(entry);
      const { target, sidePids } = l.running;
      const job = { kind: 'sliced' as const, target, pairs, warmupMs: settings.warmupMs, measureMs: settings.measureMs, trickle, serverPids: l.serverPids, sidePids, runId: runId() };
      try {
        entry.worker.send({ type: 'run', job, limitMs });
        await entry.worker.expect('opened');
      } catch (error) {
        fail(entry, error);
      }
    }
    for (let round = 0; round < settings.slices; round++) {
      for (let k = 0; k < loads.length; k++) {
        const entry = loads[(k + round) % loads.length]!;
        if (entry.failed || entry.l.aborted) continue;
        try {
          entry.worker.send({ type: 'slice', warmMs: round === 0 ? settings.warmupMs : settings.rewarmMs, measureMs: sliceMs });
          await entry.worker.expect('sliced');
        } catch (error) {
          fail(entry, error);
        }
        checkAlive(entry.l, rep, what);
      }
    }
    for (const entry of loads) {
      if (entry.failed || entry.l.aborted) continue;
      try {
        entry.worker.send({ type: 'close' });
        results.set(entry.l, (await entry.worker.expect('result')).result as PairsResult);
      } catch (error) {
        fail(entry, error);
      }
    }
  } finally {
    for (const entry of loads) entry.worker.kill();
  }
  return results;
}

/** Marks `l` aborted, with the reason, when one of its processes has exited. */
function checkAlive(l: Live, rep: number, what: string): void {
  const dead = l.running.processes.find((p) => !p.alive);
  if (!dead || l.aborted) return;
  l.aborted = true;
  failed(l.spec, l.run, rep, new Error(`${dead.label} exited during ${what}:\n${dead.output.slice(-2000)}`));
}

const pairsLine = (key: string, what: string, r: PairsResult): string =>
  `  ${key} ${what}: ${r.perSecond.toFixed(0)}/s, ${r.cpuPer10k.toFixed(3)} CPU s/10k, p99 ${r.latencyMs.p99.toFixed(2)} ms, ` +
  `gen ${r.generatorLoad.toFixed(2)}, waits ${r.serverWait.toFixed(2)}/${r.generatorWait.toFixed(2)}, bad ${r.badPayloads}, errors ${r.serverErrors}, lost ${r.lost}`;

/** The windows of a repetition, in this order; each runs for every live server. */
function windows(): { what: string; body: (live: Live[], rep: number) => Promise<void> }[] {
  const list: { what: string; body: (live: Live[], rep: number) => Promise<void> }[] = [];
  for (const pairs of scenarios.has('pairs') ? settings.pairs : []) {
    const what = `${pairs} pairs`;
    list.push({
      what,
      body: async (live, rep) => {
        for (const [l, r] of await slicedWindow(live, pairs, false, rep, what)) {
          recordPairs(l.run, '', `@${pairs}`, r);
          log(pairsLine(l.spec.key, what, r));
        }
      },
    });
  }
  if (scenarios.has('trickle')) {
    list.push({
      what: 'trickle ICE',
      body: async (live, rep) => {
        for (const [l, r] of await slicedWindow(live, settings.tricklePairs, true, rep, 'trickle ICE')) {
          recordPairs(l.run, 'trickle', '', r);
          log(pairsLine(l.spec.key, 'trickle', r));
        }
      },
    });
  }
  if (scenarios.has('churn')) {
    list.push({
      what: 'new connections',
      body: async (live, rep) => {
        for (const l of live) {
          if (l.aborted) continue;
          try {
            const r = await churnWindow(l, 50);
            add(l.run, 'conn.rate', r.perSecond);
            add(l.run, 'conn.cpuMs', r.cpuMsPerConnection);
            add(l.run, 'conn.fail', r.failures);
            add(l.run, 'conn.gen', r.generatorLoad);
            log(`  ${l.spec.key} new connections: ${r.perSecond.toFixed(0)}/s, ${r.cpuMsPerConnection.toFixed(3)} CPU ms each, failures ${r.failures}`);
          } catch (error) {
            noteFailure(l.run, l.spec.key, rep, `new connections failed: ${(error as Error).message.split('\n')[0]}`);
          }
          checkAlive(l, rep, 'new connections');
        }
      },
    });
  }
  return list;
}

/**
 * The rivals `base` duels, in order (`--against` adds the other build),
 * each looked up when its turn comes: one that died since is skipped.
 */
function* duelRivals(live: Live[], base: string): Generator<[key: string, rival: Live]> {
  for (const key of flags.against ? [...DUEL_RIVALS, 'sigserve-other' as const] : DUEL_RIVALS) {
    if (key === base) continue;
    const rival = live.find((l) => l.spec.key === key && !l.aborted);
    if (rival) yield [key, rival];
  }
}

/**
 * The duel scenario: sigserve and one rival at a time, both on the server
 * core (a cluster's two nodes both) and loaded at the same moment by a generator worker each, for 50 and
 * 500 pairs, then for new connections. On a shared VM the core's speed moved by up to 2.4× between
 * windows a minute apart (the same server, the same load); two servers
 * measured at once share every slowdown, so the ratio of their CPU per
 * handshake does not depend on when it was taken. Each gets about half the
 * core, so the absolute figures are not those of the pairs windows.
 * Recorded on sigserve's run as `duel.<rival>.mine@N` and `duel.<rival>.theirs@N`
 * (CPU s per 10k handshakes), and `duel.<rival>.mine@conn`, `.theirs@conn`
 * (CPU ms per connection) and `.rate@conn` (sigserve's connections per
 * second over the rival's).
 */
async function duels(live: Live[], rep: number): Promise<void> {
  const base = flags['duel-base'] ?? 'sigserve';
  const mine = live.find((l) => l.spec.key === base && !l.aborted);
  if (!mine) return;
  for (const pairs of settings.pairs.filter((p) => p > 1)) {
    for (const [key, rival] of duelRivals(live, base)) {
      try {
        const [a, b] = await Promise.all([pairsWindow(mine, pairs, false, []), pairsWindow(rival, pairs, false, [])]);
        const bad = a.badPayloads + b.badPayloads + a.lost + b.lost + a.serverErrors + b.serverErrors;
        add(mine.run, `duel.${key}.mine@${pairs}`, a.cpuPer10k);
        add(mine.run, `duel.${key}.theirs@${pairs}`, b.cpuPer10k);
        add(mine.run, `duel.${key}.bad@${pairs}`, bad);
        log(
          `  duel ${base}/${key} ${pairs} pairs: ${a.cpuPer10k.toFixed(3)} / ${b.cpuPer10k.toFixed(3)} CPU s/10k (${(a.cpuPer10k / b.cpuPer10k).toFixed(2)}×), ` +
            `${a.perSecond.toFixed(0)} / ${b.perSecond.toFixed(0)} per s, bad/lost/errors ${bad}`,
        );
      } catch (error) {
        noteFailure(mine.run, mine.spec.key, rep, `duel with ${key} at ${pairs} pairs failed: ${(error as Error).message.split('\n')[0]}`);
      }
    }
  }
  // New connections, the same way: the figure the sequential window finds
  // swinging most from one minute to the next.
  for (const [key, rival] of duelRivals(live, base)) {
    try {
      const [a, b] = await Promise.all([churnWindow(mine, 50), churnWindow(rival, 51)]);
      add(mine.run, `duel.${key}.mine@conn`, a.cpuMsPerConnection);
      add(mine.run, `duel.${key}.theirs@conn`, b.cpuMsPerConnection);
      add(mine.run, `duel.${key}.rate@conn`, a.perSecond / b.perSecond);
      add(mine.run, `duel.${key}.bad@conn`, a.failures + b.failures);
      log(
        `  duel ${base}/${key} new connections: ${a.cpuMsPerConnection.toFixed(3)} / ${b.cpuMsPerConnection.toFixed(3)} CPU ms each ` +
          `(${(a.cpuMsPerConnection / b.cpuMsPerConnection).toFixed(2)}×), ${a.perSecond.toFixed(0)} / ${b.perSecond.toFixed(0)} per s, failures ${a.failures + b.failures}`,
      );
    } catch (error) {
      noteFailure(mine.run, mine.spec.key, rep, `new-connections duel with ${key} failed: ${(error as Error).message.split('\n')[0]}`);
    }
  }
}

/** Logs a scenario that failed and keeps it in the server's notes for the report. */
function noteFailure(run: ServerRun, key: string, rep: number, message: string): void {
  log(`  ${key}: ${message}`);
  run.notes.push(`repetition ${rep + 1}: ${message}`);
}

/** Marks a server skipped when cluster mode is unavailable, or notes why its repetition stopped. */
function failed(spec: ServerSpec, run: ServerRun, rep: number, error: unknown): void {
  if (error instanceof ClusterUnavailable) {
    run.skipped = error.message;
    log(`${spec.label}: SKIPPED: ${error.message}`);
    return;
  }
  const message = (error as Error).message;
  run.notes.push(`repetition ${rep + 1} aborted: ${message.split('\n')[0]}`);
  log(`${spec.label}: repetition ${rep + 1} aborted: ${message}`);
}

/**
 * One repetition. Every server is started first (each on its own port, all
 * pinned to the server core; the ones not being measured sit idle), then each
 * window runs for every server back to back before the next window begins, so
 * the servers' figures of one kind are measured within a minute of each other.
 * On a machine whose speed drifts over minutes (a shared VM), measuring a
 * server's every scenario before the next server's put minutes between the
 * figures a ratio compares. Each server still goes through the same sequence
 * of windows on a fresh process; idle memory then runs on fresh processes, one
 * server at a time.
 */
async function repetition(order: number[], specs: ServerSpec[], runs: ServerRun[], rep: number): Promise<void> {
  const live: Live[] = [];
  const list = windows();
  try {
    for (const i of order) {
      const spec = specs[i]!;
      const run = runs[i]!;
      if (run.skipped || (!list.length && !scenarios.has('duel'))) continue;
      log(`${spec.label}: starting (repetition ${rep + 1}/${settings.reps})`);
      try {
        const running = await spec.start({ nodeFlags });
        live.push({ spec, run, running, serverPids: running.processes.map((p) => p.pid), aborted: false });
      } catch (error) {
        failed(spec, run, rep, error);
      }
    }
    for (const window of list) {
      await window.body(live, rep);
      for (const l of live) checkAlive(l, rep, window.what);
    }
    if (scenarios.has('duel')) await duels(live, rep);
  } finally {
    await Promise.all(live.map((l) => l.running.stop()));
  }
  if (!scenarios.has('idle')) return;
  for (const i of order) {
    const spec = specs[i]!;
    const run = runs[i]!;
    if (run.skipped) continue;
    const idle = async (count: (processes: number) => number, prefix: string): Promise<void> => {
      try {
        await idleScenario(spec, run, count, prefix);
      } catch (error) {
        if (error instanceof ClusterUnavailable) throw error;
        noteFailure(run, spec.key, rep, `${prefix} scenario failed: ${(error as Error).message.split('\n')[0]}`);
      }
    };
    try {
      // 10,000 connections in all (spread over the nodes in cluster mode); then near the most each process can hold.
      await idle(() => settings.idle, 'idle');
      if (settings.idleMax > 0) await idle((processes) => settings.idleMax * processes, 'idlemax');
    } catch (error) {
      failed(spec, run, rep, error);
    }
  }
}

function machine(): string {
  const model = cpus()[0]?.model.replace(/\s+/g, ' ').trim() ?? 'unknown CPU';
  return `${cpus().length} × ${model}`;
}

function versionOf(pkg: string): string {
  try {
    return (JSON.parse(readFileSync(join(ROOT, 'node_modules', pkg, 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return '?';
  }
}

async function main(): Promise<void> {
  const startedAt = new Date();
  const watchdog = setTimeout(() => {
    log(`time limit of ${settings.limitMs / 60000} min reached: stopping`);
    killAll();
    process.exit(2);
  }, settings.limitMs);
  watchdog.unref();
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      killAll();
      process.exit(130);
    });
  }

  const specs = [...SERVERS, ...(flags.against ? [otherBuild(resolve(flags.against), flags['against-cluster'] ?? false)] : [])].filter((s) => !only || only.has(s.key) || s.key === 'sigserve-other');
  const runs: ServerRun[] = specs.map((s) => ({ key: s.key, label: s.label, samples: {}, notes: [] }));
  for (const [i, spec] of specs.entries()) {
    const why = spec.unavailable();
    if (why) {
      runs[i]!.skipped = why;
      log(`${spec.label}: SKIPPED: ${why}`);
    }
  }
  const info: RunInfo = {
    quick,
    startedAt: startedAt.toISOString(),
    minutes: 0,
    reps: settings.reps,
    pairs: settings.pairs,
    tricklePairs: settings.tricklePairs,
    warmupMs: settings.warmupMs,
    measureMs: settings.measureMs,
    slices: settings.slices,
    rewarmMs: settings.rewarmMs,
    churnMs: settings.churnMs,
    idle: settings.idle,
    idleMax: settings.idleMax,
    machine: machine(),
    node: process.versions.node,
    loadBefore: loadavg()
      .map((l) => l.toFixed(2))
      .join(' / '),
    versions: {
      sigserve: (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version,
      'socket.io': versionOf('socket.io'),
      peer: versionOf('peer'),
      ws: versionOf('ws'),
    },
    raisedLimits: { ...RAISED_LIMITS },
  };

  for (let rep = 0; rep < (perServer ? settings.reps : 0); rep++) {
    // A rotated order each repetition, so no server always runs first or last.
    const order = specs.map((_, i) => (i + rep) % specs.length);
    await repetition(order, specs, runs, rep);
  }

  mkdirSync(outDir, { recursive: true });
  if (scenarios.has('scale')) {
    const at = new Date();
    log(`scale: ${settings.scaleTotal} idle connections over ${settings.scaleNodes} sigserve nodes behind Redis`);
    try {
      const result = await runScale({
        total: settings.scaleTotal,
        nodes: settings.scaleNodes,
        perWorker: 10000,
        pairs: 20,
        measureMs: settings.measureMs,
        nodeFlags,
        newWorker: () => new Worker(),
        log,
      });
      writeScale(outDir, result, at);
      log(`wrote ${join(outDir, 'scale.md')}`);
    } catch (error) {
      log(`scale scenario failed: ${(error as Error).message.split('\n')[0]}`);
      if (!perServer) process.exitCode = 1;
    }
  }
  if (!perServer) {
    killAll();
    return;
  }
  info.minutes = (Date.now() - startedAt.getTime()) / 60000;
  const files = writeResults(outDir, info, runs);
  const svg = readFileSync(files.svg, 'utf8');
  const { width, height } = svgSize(svg);
  const png = await renderPng(files.svg, join(outDir, 'chart.png'), width, height);
  log(`wrote ${files.markdown}, ${files.json}, ${files.svg}${png ? ', chart.png' : ' (no PNG: chromium unavailable)'}`);
  clearTimeout(watchdog);
  killAll();
}

main().catch((error: unknown) => {
  log(`failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  killAll();
  process.exit(1);
});
