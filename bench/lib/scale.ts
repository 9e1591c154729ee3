/**
 * The scale scenario (`npm run bench -- --scenarios scale`): a cluster of
 * several sigserve nodes on this machine behind one redis-server holds
 * `total` idle connections at once (100,000 by default), opened by several
 * generator processes (no process may hold more than 20,000 descriptors)
 * from source addresses spread over 127.0.0.0/8; while they are held, pairs
 * keep doing handshakes across nodes (sharers on node a, joiners on node b),
 * every payload checked. Reports memory per node and per connection.
 *
 * Bounded: connections, time per worker, and the caller's run limit; every
 * process it starts is tracked and ended by PID.
 * @module
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { PairsResult } from './generator.js';
import { freePort, RedisProcess, rssBytes, ServerProcess, sleep, type MemorySample } from './procs.js';
import { RAISED_LIMITS } from './targets.js';
import type { WorkerReply, WorkerRequest } from './worker.js';

/** A generator worker process as the orchestrator drives it (bench/run.ts). */
export interface ScaleWorker {
  send(request: WorkerRequest): void;
  expect<T extends WorkerReply['type']>(type: T): Promise<Extract<WorkerReply, { type: T }>>;
  kill(): void;
}

export interface ScaleOptions {
  /** Idle connections held at once over the whole cluster. @default 100000 */
  total: number;
  /** sigserve nodes. Each holds total / nodes, which must stay under 20,000 descriptors. @default 6 */
  nodes: number;
  /** Connections per generator process. @default 10000 */
  perWorker: number;
  /** Pairs doing handshakes across nodes while the idle connections are held. @default 20 */
  pairs: number;
  measureMs: number;
  nodeFlags: string[];
  newWorker: () => ScaleWorker;
  log: (text: string) => void;
}

export interface NodeFigures {
  connections: number;
  rssBefore: number;
  rssAfter: number;
  heapBefore: number;
  heapAfter: number;
}

export interface ScaleResult {
  total: number;
  opened: number;
  openSeconds: number;
  nodes: NodeFigures[];
  redisRssBefore: number;
  redisRssAfter: number;
  /** Handshakes across nodes while everything was held. */
  pairs: PairsResult;
  /** Connected sockets each node reported on /metrics while they were held. */
  reported: number[];
}

/** Connections worker `w` sends to node `k` when it spreads `count` round-robin over `nodes`. */
const shareOf = (count: number, nodes: number, k: number): number => (k < count ? Math.floor((count - k - 1) / nodes) + 1 : 0);

async function connectedSockets(url: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith('sigserve_connected_sockets'));
  return line ? Number(line.split(' ').at(-1)) : NaN;
}

export async function runScale(options: ScaleOptions): Promise<ScaleResult> {
  const { total, nodes: nodeCount, perWorker, log } = options;
  if (total / nodeCount > 19000) throw new Error(`${total} connections over ${nodeCount} nodes exceed 19,000 per node (20,000 descriptors)`);
  const redis = new RedisProcess(await freePort());
  const nodes: ServerProcess[] = [];
  const workers: ScaleWorker[] = [];
  try {
    await redis.ready();
    for (let k = 0; k < nodeCount; k++) {
      const port = await freePort();
      const env = { HOST: '127.0.0.1', LOG_LEVEL: 'warn', ...RAISED_LIMITS, PORT: String(port), REDIS_URL: `redis://127.0.0.1:${redis.port}` };
      nodes.push(new ServerProcess({ label: `sigserve node ${k}`, script: ['dist/cli.js'], env, port, nodeFlags: options.nodeFlags }));
    }
    await Promise.all(nodes.map((n) => n.ready()));
    const urls = nodes.map((n) => `http://127.0.0.1:${n.port}`);
    const before = await Promise.all(nodes.map((n) => n.memory()));
    const redisRssBefore = rssBytes(redis.pid);

    const workerCount = Math.ceil(total / perWorker);
    const counts: number[] = [];
    const t0 = Date.now();
    for (let w = 0; w < workerCount; w++) {
      const worker = options.newWorker();
      workers.push(worker);
      const count = Math.min(perWorker, total - w * perWorker);
      counts.push(count);
      // Each worker starts on another node, so the remainders spread too.
      const rotated = [...urls.slice(w % nodeCount), ...urls.slice(0, w % nodeCount)];
      worker.send({
        type: 'run',
        job: { kind: 'idle', target: { protocol: 'seed', sharerUrl: urls[0]!, joinerUrl: urls[1]!, urls: rotated }, count, runId: `scale${w}`, worker: w, concurrency: 50 },
        limitMs: 10 * 60_000,
      });
    }
    const opened = (await Promise.all(workers.map((w) => w.expect('opened')))).reduce((s, o) => s + o.opened, 0);
    const openSeconds = (Date.now() - t0) / 1000;
    log(`  scale: ${opened} idle connections open over ${nodeCount} nodes in ${openSeconds.toFixed(1)} s`);
    const perNode = nodes.map((_, k) => counts.reduce((s, c, w) => s + shareOf(c, nodeCount, (k - (w % nodeCount) + nodeCount) % nodeCount), 0));
    const reported = await Promise.all(urls.map(connectedSockets));
    await sleep(1000);
    const after: MemorySample[] = await Promise.all(nodes.map((n) => n.memory()));
    const redisRssAfter = rssBytes(redis.pid);

    // Handshakes across nodes while everything is held (its own worker and source addresses).
    const pairsWorker = options.newWorker();
    workers.push(pairsWorker);
    pairsWorker.send({
      type: 'run',
      job: {
        kind: 'pairs',
        target: { protocol: 'seed', sharerUrl: urls[0]!, joinerUrl: urls[1]!, urls },
        pairs: options.pairs,
        warmupMs: 1000,
        measureMs: options.measureMs,
        trickle: false,
        serverPids: nodes.map((n) => n.pid),
        sidePids: [redis.pid],
        runId: 'scalepairs',
        worker: 239,
      },
      limitMs: options.measureMs + 120_000,
    });
    const pairs = (await pairsWorker.expect('result')).result as PairsResult;
    log(`  scale: ${pairs.handshakes} handshakes across nodes while holding them (${pairs.perSecond.toFixed(0)}/s), bad ${pairs.badPayloads}, errors ${pairs.serverErrors}, lost ${pairs.lost}`);

    const figures = nodes.map((_, k) => ({
      connections: perNode[k]!,
      rssBefore: before[k]!.rss,
      rssAfter: after[k]!.rss,
      heapBefore: before[k]!.heapUsed,
      heapAfter: after[k]!.heapUsed,
    }));
    // Close politely so the nodes see ordinary disconnects; figures are taken already.
    for (const w of workers.slice(0, -1)) w.send({ type: 'close' });
    await Promise.allSettled(workers.slice(0, -1).map((w) => w.expect('result')));
    return { total, opened, openSeconds, nodes: figures, redisRssBefore, redisRssAfter, pairs, reported };
  } finally {
    for (const w of workers) w.kill();
    await Promise.all(nodes.map((n) => n.stop()));
    await redis.stop();
  }
}

const kb = (bytes: number): string => (bytes / 1024).toFixed(2);
const mb = (bytes: number): string => (bytes / 1048576).toFixed(0);

/** The scale section of RESULTS.md (bench/lib/report.ts includes `scale.md` from the output folder). */
export function scaleMarkdown(r: ScaleResult, at: Date): string {
  const sum = (f: (n: NodeFigures) => number): number => r.nodes.reduce((s, n) => s + f(n), 0);
  const lines = [
    `## Scale: ${r.opened.toLocaleString('en-US')} idle connections on ${r.nodes.length} nodes behind Redis`,
    '',
    `Run ${at.toISOString()} (\`npm run bench -- --scenarios scale\`). ${r.nodes.length} sigserve nodes in cluster mode and one redis-server on this machine, ` +
      `${r.total.toLocaleString('en-US')} idle socket.io connections opened by ${Math.ceil(r.total / 10000)} generator process(es) from source addresses spread over 127.0.0.0/8 ` +
      `(open in ${r.openSeconds.toFixed(0)} s); while they were held, ${r.pairs.pairs} pairs did handshakes across nodes (sharer on node 0, joiner on node 1): ` +
      `${r.pairs.handshakes.toLocaleString('en-US')} in ${r.pairs.seconds.toFixed(1)} s (${r.pairs.perSecond.toFixed(0)}/s, p99 ${r.pairs.latencyMs.p99.toFixed(1)} ms), ` +
      `bad payloads ${r.pairs.badPayloads}, server errors ${r.pairs.serverErrors}, lost ${r.pairs.lost}. Memory read after two full GCs once every connection was open and before the pairs started; per connection = (after − before) / connections.`,
    '',
    '| node | connections (reported on /metrics) | RSS MB | heap MB | RSS KB / conn | heap KB / conn |',
    '|---|---:|---:|---:|---:|---:|',
    ...r.nodes.map(
      (n, k) =>
        `| ${k} | ${n.connections.toLocaleString('en-US')} (${(r.reported[k] ?? NaN).toLocaleString('en-US')}) | ${mb(n.rssAfter)} | ${mb(n.heapAfter)} | ` +
        `${kb((n.rssAfter - n.rssBefore) / n.connections)} | ${kb((n.heapAfter - n.heapBefore) / n.connections)} |`,
    ),
    `| all | ${sum((n) => n.connections).toLocaleString('en-US')} | ${mb(sum((n) => n.rssAfter))} | ${mb(sum((n) => n.heapAfter))} | ` +
      `${kb(sum((n) => n.rssAfter - n.rssBefore) / sum((n) => n.connections))} | ${kb(sum((n) => n.heapAfter - n.heapBefore) / sum((n) => n.connections))} |`,
    '',
    `redis-server RSS: ${mb(r.redisRssBefore)} MB before, ${mb(r.redisRssAfter)} MB while holding them (idle connections keep nothing in Redis).`,
    '',
  ];
  return lines.join('\n');
}

/** Writes scale.json and scale.md into `dir`. */
export function writeScale(dir: string, r: ScaleResult, at: Date): void {
  writeFileSync(join(dir, 'scale.json'), `${JSON.stringify({ at: at.toISOString(), ...r }, null, 1)}\n`);
  writeFileSync(join(dir, 'scale.md'), scaleMarkdown(r, at));
}
