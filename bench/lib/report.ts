/**
 * Turns a run's samples into bench/RESULTS.md (medians, ratios against
 * peerjs-server and the raw ws relay from the same run), bench/results.json
 * and a hand-drawn SVG chart (rendered to PNG by headless Chromium when it
 * is installed). A hand-written section between the analysis markers of an
 * existing RESULTS.md is kept across runs.
 * @module
 */
import { execFile } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { DUEL_RIVALS, type ServerKey } from './targets.js';

export interface ServerRun {
  key: ServerKey;
  label: string;
  /** Why it was not measured. */
  skipped?: string;
  /** Metric name -> one value per repetition. */
  samples: Record<string, number[]>;
  /** Failures worth reading (a scenario that could not run). */
  notes: string[];
}

export interface RunInfo {
  quick: boolean;
  startedAt: string;
  minutes: number;
  reps: number;
  pairs: number[];
  tricklePairs: number;
  warmupMs: number;
  measureMs: number;
  /** Slices the sequential pairs and trickle windows were measured in, and the re-warm before each later slice (absent: one window each). */
  slices?: number;
  rewarmMs?: number;
  churnMs: number;
  idle: number;
  idleMax: number;
  machine: string;
  node: string;
  loadBefore: string;
  versions: Record<string, string>;
  /** sigserve settings raised for the run (environment variable -> value). */
  raisedLimits: Record<string, string>;
}

/** How the measured window was taken, when in slices. */
function slicedText(info: RunInfo): string {
  const slices = info.slices ?? 1;
  if (slices <= 1) return '';
  return (
    `, as ${slices} slices of ${fmt(info.measureMs / slices / 1000)} s taken turn about by the servers of the run: all of them connect their pairs, then each in turn loops for a slice (its first after the full warm-up, later ones after ${fmt((info.rewarmMs ?? 0) / 1000)} s unmeasured) while the others' pairs wait, ` +
    'the order rotating each round, and a server\'s slices add up to its window. Each server still has the server core to itself while it is measured, and its figures and its rivals\' come from the same minutes, interleaved second by second'
  );
}

export function median(values: readonly number[]): number {
  const v = values.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return NaN;
  const mid = v.length >> 1;
  return v.length % 2 ? v[mid]! : (v[mid - 1]! + v[mid]!) / 2;
}

const med = (run: ServerRun | undefined, metric: string): number => (run ? median(run.samples[metric] ?? []) : NaN);

function fmt(value: number, digits = 3): string {
  if (!Number.isFinite(value)) return '–';
  if (value === 0) return '0';
  const abs = Math.abs(value);
  if (abs >= 1000) return Math.round(value).toLocaleString('en-US');
  return value.toPrecision(digits).replace(/\.?0+$/, (m) => (m.startsWith('.') ? '' : m));
}

const ratio = (value: number, base: number): string => (Number.isFinite(value) && Number.isFinite(base) && base > 0 ? `${(value / base).toFixed(2)}×` : '–');

function table(header: string[], rows: string[][]): string {
  const out = [`| ${header.join(' | ')} |`, `|${header.map((_, i) => (i === 0 ? '---' : '---:')).join('|')}|`];
  for (const row of rows) out.push(`| ${row.join(' | ')} |`);
  return out.join('\n');
}

const ANALYSIS_START = '<!-- analysis:start -->';
const ANALYSIS_END = '<!-- analysis:end -->';

function keptAnalysis(path: string): string {
  if (!existsSync(path)) return '';
  const text = readFileSync(path, 'utf8');
  const a = text.indexOf(ANALYSIS_START);
  const b = text.indexOf(ANALYSIS_END);
  return a >= 0 && b > a ? text.slice(a, b + ANALYSIS_END.length) : '';
}

/**
 * The ratio of one metric in each repetition, against the other server's
 * figure from the same repetition: how much the run's spread, not only its
 * medians, supports a ratio. Empty when a repetition is missing on either side.
 */
function perRepetition(run: ServerRun, base: ServerRun | undefined, metric: string): string {
  const a = run.samples[metric] ?? [];
  const b = base?.samples[metric] ?? [];
  if (a.length < 2 || a.length !== b.length) return '–';
  return a.map((v, i) => ratio(v, b[i]!)).join(', ');
}

/**
 * sigserve's CPU per handshake over a rival's in each duel, in repetition
 * order; `inverted`, the rival's over sigserve's (cluster mode's cost).
 */
function duelRatios(run: ServerRun, rival: string, pairs: number | 'conn', inverted = false): number[] {
  const a = run.samples[`duel.${rival}.mine@${pairs}`] ?? [];
  const b = run.samples[`duel.${rival}.theirs@${pairs}`] ?? [];
  return a.length === b.length ? a.map((v, i) => (inverted ? b[i]! / v : v / b[i]!)) : [];
}

/** A ratio already divided, as the tables print it. */
const times = (r: number): string => (Number.isFinite(r) ? `${r.toFixed(2)}×` : '–');
/** Ratios of each repetition, in order. */
const timesEach = (ratios: number[]): string => ratios.map(times).join(', ') || '–';

const duelRatio = (run: ServerRun, rival: string, pairs: number | 'conn', inverted = false): string => times(median(duelRatios(run, rival, pairs, inverted)));

const duelEach = (run: ServerRun, rival: string, pairs: number | 'conn', inverted = false): string => timesEach(duelRatios(run, rival, pairs, inverted));

/** Throughput cell, marked when the generator, not the server, was the limit. */
function tputCell(run: ServerRun, p: number | 'trickle'): string {
  const key = p === 'trickle' ? 'trickle' : `@${p}`;
  const tput = med(run, p === 'trickle' ? 'trickle.tput' : `tput@${p}`);
  const gen = med(run, p === 'trickle' ? 'trickle.gen' : `gen${key}`);
  return `${fmt(tput)}${gen >= 0.9 ? ' †' : ''}`;
}

export function renderMarkdown(info: RunInfo, runs: ServerRun[], previous: string): string {
  const measured = runs.filter((r) => !r.skipped);
  const peer = measured.find((r) => r.key === 'peerjs');
  const ws = measured.find((r) => r.key === 'ws');
  const mem = measured.find((r) => r.key === 'sigserve');
  const cluster = measured.find((r) => r.key === 'sigserve-cluster');
  const p50 = info.pairs.includes(50) ? 50 : info.pairs[Math.min(1, info.pairs.length - 1)]!;
  const p500 = info.pairs.includes(500) ? 500 : info.pairs[info.pairs.length - 1]!;
  // The pair counts the targets name, each once (a run with one --pairs value has one).
  const targetPairs = p50 === p500 ? [p50] : [p50, p500];
  const lines: string[] = [];
  const status = info.quick
    ? '**Preliminary: quick mode** (`npm run bench -- --quick`: one repetition, short windows, on a machine shared with other work). Read the ratios, not the absolute figures.'
    : `Full run: ${info.reps} repetitions, medians reported.`;

  lines.push('# Benchmark results', '', status, '');
  lines.push(
    `Run ${info.startedAt}, ${info.minutes.toFixed(1)} min. ${info.machine}; Node ${info.node}; load average before the run: ${info.loadBefore}.`,
    `Servers: ${Object.entries(info.versions)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ')}.`,
    '',
  );
  const skipped = runs.filter((r) => r.skipped);
  for (const r of skipped) lines.push(`- **${r.label}: not measured.** ${r.skipped}`);
  for (const r of measured) for (const n of r.notes) lines.push(`- ${r.label}: ${n}`);
  if (skipped.length || measured.some((r) => r.notes.length)) lines.push('');
  lines.push('![chart](chart.svg)', '');

  lines.push('## Against the targets of issue 5', '');
  if (mem) {
    const rows: string[][] = [];
    for (const p of targetPairs) {
      rows.push([
        `server CPU per handshake, ${p} pairs`,
        `${ratio(med(mem, `cpu@${p}`), med(peer, `cpu@${p}`))} peerjs, ${ratio(med(mem, `cpu@${p}`), med(ws, `cpu@${p}`))} ws`,
        perRepetition(mem, peer, `cpu@${p}`),
        '≤ 0.90× peerjs and ≤ 1.15× ws',
      ]);
    }
    for (const p of targetPairs) {
      const peerjs = duelRatio(mem, 'peerjs', p);
      const relay = duelRatio(mem, 'ws', p);
      if (peerjs !== '–' || relay !== '–') {
        rows.push([`server CPU per handshake, ${p} pairs, measured at the same moment (duel)`, `${peerjs} peerjs, ${relay} ws (median of repetitions)`, duelEach(mem, 'peerjs', p), '≤ 0.90× peerjs and ≤ 1.15× ws']);
      }
    }
    for (const p of targetPairs) rows.push([`throughput, ${p} pairs`, `${ratio(med(mem, `tput@${p}`), med(peer, `tput@${p}`))} peerjs`, perRepetition(mem, peer, `tput@${p}`), '≥ 1× peerjs']);
    for (const p of targetPairs) rows.push([`p99 latency, ${p} pairs`, `${ratio(med(mem, `p99@${p}`), med(peer, `p99@${p}`))} peerjs`, perRepetition(mem, peer, `p99@${p}`), '≤ 1× peerjs']);
    rows.push([`idle memory per connection at ${fmt(info.idle)} (RSS / heap)`, `${ratio(med(mem, 'idle.rss'), med(peer, 'idle.rss'))} / ${ratio(med(mem, 'idle.heap'), med(peer, 'idle.heap'))} peerjs`, perRepetition(mem, peer, 'idle.rss'), '≤ 1× peerjs']);
    rows.push(['new connections per second', `${ratio(med(mem, 'conn.rate'), med(peer, 'conn.rate'))} peerjs`, perRepetition(mem, peer, 'conn.rate'), '≥ 1× peerjs']);
    const rates = mem.samples['duel.peerjs.rate@conn'] ?? [];
    if (rates.length) {
      rows.push([
        'new connections per second, measured at the same moment (duel)',
        `${times(median(rates))} peerjs (median of repetitions; CPU per connection ${duelRatio(mem, 'peerjs', 'conn')})`,
        timesEach(rates),
        '≥ 1× peerjs',
      ]);
    }
    if (cluster) {
      for (const p of targetPairs) {
        rows.push([`cluster CPU per handshake (both nodes), ${p} pairs`, `${ratio(med(cluster, `cpu@${p}`), med(mem, `cpu@${p}`))} memory mode`, perRepetition(cluster, mem, `cpu@${p}`), '≤ 2× memory mode']);
      }
    }
    for (const p of targetPairs) {
      if (!duelRatios(mem, 'sigserve-cluster', p, true).length) continue;
      rows.push([
        `cluster CPU per handshake (both nodes), ${p} pairs, measured at the same moment (duel)`,
        `${duelRatio(mem, 'sigserve-cluster', p, true)} memory mode (median of repetitions)`,
        duelEach(mem, 'sigserve-cluster', p, true),
        '≤ 2× memory mode',
      ]);
    }
    lines.push(table(['measure (sigserve, memory mode)', 'this run (ratio of medians)', 'each repetition (against the same repetition)', 'target'], rows), '');
  } else {
    lines.push('sigserve was not measured in this run.', '');
  }

  const rowsFor = (cells: (r: ServerRun) => string[]): string[][] => measured.map((r) => [r.label, ...cells(r)]);

  lines.push('## Server CPU seconds per 10,000 handshakes', '', 'From `/proc/<pid>/stat` (utime + stime, all threads) over the measured window; cluster: both nodes summed (redis-server listed apart).', '');
  lines.push(
    table(
      ['server', ...info.pairs.map((p) => `${p} pair${p === 1 ? '' : 's'}`), `vs peerjs @${p50} / @${p500}`, `vs ws @${p50} / @${p500}`],
      rowsFor((r) => [
        ...info.pairs.map((p) => fmt(med(r, `cpu@${p}`))),
        `${ratio(med(r, `cpu@${p50}`), med(peer, `cpu@${p50}`))} / ${ratio(med(r, `cpu@${p500}`), med(peer, `cpu@${p500}`))}`,
        `${ratio(med(r, `cpu@${p50}`), med(ws, `cpu@${p50}`))} / ${ratio(med(r, `cpu@${p500}`), med(ws, `cpu@${p500}`))}`,
      ]),
    ),
    '',
  );
  if (cluster) {
    lines.push(`redis-server CPU in cluster mode, seconds per 10,000 handshakes: ${info.pairs.map((p) => `${fmt(med(cluster, `side@${p}`))} at ${p} pair${p === 1 ? '' : 's'}`).join(', ')}.`, '');
  }

  if (mem && DUEL_RIVALS.some((rival) => info.pairs.some((p) => (mem.samples[`duel.${rival}.mine@${p}`] ?? []).length))) {
    lines.push(
      '## Server CPU per handshake, measured at the same moment (duel)',
      '',
      'sigserve (memory mode) and one other server at a time, both pinned to the server core and loaded by a generator worker each over the same window: every slowdown of the machine falls on both. Each has about half the core, so the absolute figures differ from the table above; the ratio is the figure to read. Ratio = median over repetitions of the ratio within each.',
      '',
    );
    const rows: string[][] = [];
    for (const rival of DUEL_RIVALS) {
      for (const p of info.pairs.filter((n) => n > 1)) {
        const a = mem.samples[`duel.${rival}.mine@${p}`] ?? [];
        if (!a.length) continue;
        const bad = (mem.samples[`duel.${rival}.bad@${p}`] ?? []).reduce((x, y) => x + y, 0);
        rows.push([`${rival}, ${p} pairs`, fmt(median(a)), fmt(median(mem.samples[`duel.${rival}.theirs@${p}`] ?? [])), duelRatio(mem, rival, p), duelEach(mem, rival, p), String(bad)]);
      }
    }
    lines.push(table(['against', 'sigserve CPU s / 10k', 'other CPU s / 10k', 'ratio', 'each repetition', 'bad / lost / errors'], rows), '');
    const connRows: string[][] = [];
    for (const rival of DUEL_RIVALS) {
      const a = mem.samples[`duel.${rival}.mine@conn`] ?? [];
      if (!a.length) continue;
      const rates = mem.samples[`duel.${rival}.rate@conn`] ?? [];
      const failed = (mem.samples[`duel.${rival}.bad@conn`] ?? []).reduce((x, y) => x + y, 0);
      connRows.push([rival, fmt(median(a)), fmt(median(mem.samples[`duel.${rival}.theirs@conn`] ?? [])), duelRatio(mem, rival, 'conn'), duelEach(mem, rival, 'conn'), times(median(rates)), String(failed)]);
    }
    if (connRows.length) {
      lines.push(
        'New connections, the same way: each server opened, accepted at protocol level and closed connections from a generator worker of its own (32 at a time) over the same window.',
        '',
        table(['against', 'sigserve CPU ms / connection', 'other CPU ms / connection', 'ratio', 'each repetition', 'connections per second, sigserve / other', 'failed connections'], connRows),
        '',
      );
    }
  }

  lines.push('## Throughput (handshakes per second)', '', '† the generator used ≥ 90 % of its core: the figure is a floor for this server, not its ceiling.', '');
  lines.push(
    table(
      ['server', ...info.pairs.map((p) => `${p} pair${p === 1 ? '' : 's'}`), `vs peerjs @${p50} / @${p500}`, `vs ws @${p50} / @${p500}`],
      rowsFor((r) => [
        ...info.pairs.map((p) => tputCell(r, p)),
        `${ratio(med(r, `tput@${p50}`), med(peer, `tput@${p50}`))} / ${ratio(med(r, `tput@${p500}`), med(peer, `tput@${p500}`))}`,
        `${ratio(med(r, `tput@${p50}`), med(ws, `tput@${p50}`))} / ${ratio(med(r, `tput@${p500}`), med(ws, `tput@${p500}`))}`,
      ]),
    ),
    '',
  );

  lines.push('## Handshake latency (ms): p50 / p99 / max', '');
  lines.push(
    table(
      ['server', ...info.pairs.map((p) => `${p} pair${p === 1 ? '' : 's'}`), `p99 vs peerjs @${p50} / @${p500}`],
      rowsFor((r) => [
        ...info.pairs.map((p) => `${fmt(med(r, `p50@${p}`))} / ${fmt(med(r, `p99@${p}`))} / ${fmt(med(r, `max@${p}`))}`),
        `${ratio(med(r, `p99@${p50}`), med(peer, `p99@${p50}`))} / ${ratio(med(r, `p99@${p500}`), med(peer, `p99@${p500}`))}`,
      ]),
    ),
    '',
  );

  lines.push(`## Trickle ICE (${info.tricklePairs} pairs: offer + 8 candidates, answer + 8 candidates)`, '');
  lines.push(
    table(
      ['server', 'handshakes/s', 'CPU s per 10k', 'vs peerjs', 'vs ws', 'p50 / p99 / max ms'],
      rowsFor((r) => [
        tputCell(r, 'trickle'),
        fmt(med(r, 'trickle.cpu')),
        ratio(med(r, 'trickle.cpu'), med(peer, 'trickle.cpu')),
        ratio(med(r, 'trickle.cpu'), med(ws, 'trickle.cpu')),
        `${fmt(med(r, 'trickle.p50'))} / ${fmt(med(r, 'trickle.p99'))} / ${fmt(med(r, 'trickle.max'))}`,
      ]),
    ),
    '',
  );

  const memTable = (prefix: string, count: number, title: string): void => {
    if (!measured.some((r) => (r.samples[`${prefix}.rss`] ?? []).length)) return;
    lines.push(`## ${title}`, '');
    lines.push(
      table(
        ['server', 'RSS KB / conn', 'heap KB / conn', 'RSS vs peerjs', 'heap vs peerjs', 'RSS vs ws', 'heap vs ws', `RSS MB at ${fmt(count)}`],
        rowsFor((r) => [
          fmt(med(r, `${prefix}.rss`) / 1024),
          fmt(med(r, `${prefix}.heap`) / 1024),
          ratio(med(r, `${prefix}.rss`), med(peer, `${prefix}.rss`)),
          ratio(med(r, `${prefix}.heap`), med(peer, `${prefix}.heap`)),
          ratio(med(r, `${prefix}.rss`), med(ws, `${prefix}.rss`)),
          ratio(med(r, `${prefix}.heap`), med(ws, `${prefix}.heap`)),
          fmt(med(r, `${prefix}.rssTotal`) / 1048576),
        ]),
      ),
      '',
    );
  };
  memTable('idle', info.idle, `Memory per idle connection at ${fmt(info.idle)} connections`);
  if (info.idleMax > 0) memTable('idlemax', info.idleMax, `Memory per idle connection at ${fmt(info.idleMax)} connections per server process (close to the 20,000-descriptor limit)`);

  lines.push('## New connections', '', 'Open a WebSocket, wait until the server accepted it at protocol level, close it; 32 at a time.', '');
  lines.push(
    table(
      ['server', 'connections/s', 'vs peerjs', 'vs ws', 'server CPU ms / connection', 'vs peerjs', 'vs ws'],
      rowsFor((r) => [
        fmt(med(r, 'conn.rate')) + (med(r, 'conn.gen') >= 0.9 ? ' †' : ''),
        ratio(med(r, 'conn.rate'), med(peer, 'conn.rate')),
        ratio(med(r, 'conn.rate'), med(ws, 'conn.rate')),
        fmt(med(r, 'conn.cpuMs')),
        ratio(med(r, 'conn.cpuMs'), med(peer, 'conn.cpuMs')),
        ratio(med(r, 'conn.cpuMs'), med(ws, 'conn.cpuMs')),
      ]),
    ),
    '',
  );

  lines.push(
    '## Health of the run',
    '',
    'Generator load: the share of its core the generator used in the window (≥ 0.9: generator-bound). Wait: the share of the window the server / generator main thread was runnable but its core was busy with other work (`/proc/<pid>/schedstat`); high values mean the machine was noisy and absolute figures suffer, CPU-seconds-per-handshake much less. Bad payloads, server errors and lost handshakes must be 0.',
    '',
  );
  lines.push(
    table(
      ['server', ...info.pairs.map((p) => `generator load @${p}`), ...info.pairs.map((p) => `wait server / generator @${p}`), 'bad payloads', 'server errors', 'lost handshakes', 'failed connections'],
      rowsFor((r) => {
        const total = (prefix: string): number =>
          [...info.pairs.map((p) => `${prefix}@${p}`), `trickle.${prefix}`].reduce((s, m) => s + (r.samples[m] ?? []).reduce((a, b) => a + b, 0), 0);
        return [
          ...info.pairs.map((p) => fmt(med(r, `gen@${p}`), 2)),
          ...info.pairs.map((p) => `${fmt(med(r, `swait@${p}`), 2)} / ${fmt(med(r, `gwait@${p}`), 2)}`),
          String(total('bad')),
          String(total('err')),
          String(total('lost')),
          String((r.samples['conn.fail'] ?? []).reduce((a, b) => a + b, 0)),
        ];
      }),
    ),
    '',
  );

  // Written by the scale scenario (bench/lib/scale.ts), which runs apart from the per-server tables.
  const scale = join(dirname(previous), 'scale.md');
  if (existsSync(scale)) lines.push(readFileSync(scale, 'utf8').trimEnd(), '');

  lines.push(
    '## Method',
    '',
    '- One command, `npm run bench` (`-- --quick` for a short development run). It builds `dist/`, then starts each server as its own process, pinned to core 0 with `taskset -c 0`; the load generator runs in worker processes pinned to core 1. Loopback only; every process is started, tracked and ended by PID; each worker and the whole run have time limits.',
    '- Servers: sigserve as users start it (`node dist/cli.js`), in memory mode and in cluster mode (two nodes and a real `redis-server` on a free loopback port, sharers on one node and joiners on the other, so every handshake crosses nodes); peerjs-server (npm `peer`, `PeerServer` as its CLI starts it, `concurrent_limit` raised from 5,000 so 10,000 idle clients fit); a ~30-line relay on the raw `ws` package (`bench/servers/ws-relay.ts`); a plain socket.io 4 relay of the same seed events with no validation, limits or metrics (`bench/servers/socketio-relay.ts`).',
    `- sigserve runs with these limits raised: ${Object.entries(info.raisedLimits)
      .map(([k, v]) => `\`${k}=${v}\``)
      .join(', ')} (defaults: 200 events/s per socket, burst 400, 5,000 events/s per address, 10,000 joiners per share over its life), because a looping pair sends thousands of events a second from one socket and brings a fresh joiner to its share every handshake. The limits stay enforced, only higher: the limiter still runs on every event. Every other setting is the default.`,
    '- Clients: lean clients on the `ws` package, the same for every server (`bench/lib/wire.ts`): socket.io v4 framing over the websocket transport for sigserve and the socket.io relay, peerjs-server\'s own protocol (`/peerjs?key&id&token`, OPEN, OFFER / ANSWER / CANDIDATE with `dst`, a HEARTBEAT every 5 s like the peerjs client), JSON `{to}` messages for the ws relay. No permessage-deflate (every server here declines it by default).',
    '- A handshake: the joiner sends a ~1.6 KB SDP offer addressed to its sharer (sigserve: `launch(name, uid, offer)` to a name the sharer shared once; peerjs: OFFER to the sharer\'s id), the server relays it, the sharer replies with a ~1.2 KB answer (`answer(name, uid, answer)`; peerjs: ANSWER), and the handshake ends when the joiner has it. Each handshake uses a fresh joinerUID / connectionId, so sigserve routes every one through its registry. Every payload received is compared with what was sent. Trickle ICE adds 8 candidates each way and ends when both sides have everything.',
    `- Throughput: N pairs loop handshakes back to back for ${fmt(info.warmupMs / 1000)} s of warm-up (long enough for V8 to finish optimizing every server's hot code: the cluster nodes' Redis client runs once per batch, not per message, and with 3 s \`--trace-opt\` still showed it being optimized in the measured window), then ${fmt(info.measureMs / 1000)} s measured${slicedText(info)}; latency is from sending the offer to the handshake being complete. Server CPU per 10,000 handshakes is the server's CPU time over the window divided by the handshakes completed in it: the figure least disturbed by a noisy machine.`,
    `- Idle memory: after a forced GC, the server's RSS and V8 heapUsed are read through a probe preloaded into every server alike (\`bench/servers/probe.ts\`, \`--expose-gc\`, answering over the IPC channel); then ${fmt(info.idle)} connections are opened (split over generator processes of at most 5,000 each, source addresses spread over 127.0.0.0/8), accepted at protocol level, left idle for a second, and read again. Per connection = difference / count. Heap is \`heapUsed\` after two full GCs; it excludes Buffers held outside the heap.`,
    `- New connections: ${fmt(info.churnMs / 1000)} s of opening, protocol handshake (socket.io CONNECT, peerjs OPEN, ws upgrade) and closing; server CPU per connection includes accepting and tearing down.`,
    `- ${info.reps} repetition(s), a fresh server process per repetition; tables show medians. Ratios compare figures from the same run. Within a repetition every server is started first and each window (1, 50 and 500 pairs, trickle ICE, new connections) runs for every server, in an order rotated each repetition, before the next window begins${(info.slices ?? 1) > 1 ? ' (the pairs and trickle windows in slices taken turn about, as above; new connections back to back)' : ', back to back'}: the figures a ratio compares are measured within a minute of each other, not many minutes apart, which matters on a shared VM whose speed drifts. The servers not being measured sit idle on the same core. Idle memory is measured afterwards on fresh processes, one server at a time.`,
    '- Duel (the CPU ratio least exposed to a drifting machine): after the windows, sigserve and peerjs-server, then sigserve and the ws relay, then sigserve in memory mode and in cluster mode (both nodes; redis-server apart), run 50 and 500 pairs at the same moment, all their processes on core 0 and one generator worker for each on core 1; each server\'s CPU per handshake is read over the same window. Against cluster mode the table reads sigserve (memory) over the cluster, the targets table the cluster over memory mode. Then each pair of servers opens and closes connections at the same moment, 32 at a time from a generator worker each, for the same 6 s: CPU per connection and connections per second, side by side. With two generators on one core that window is bound by the generators, not the servers, so each server\'s CPU per connection includes the cost of waking up for nearly every connection; the ratio compares the servers at the same rate, not at their ceilings.',
    '',
  );

  const analysis = keptAnalysis(previous);
  lines.push(
    analysis ||
      `${ANALYSIS_START}\n## Where the time and memory go\n\n(Written by hand after profiling; kept when the tables are regenerated.)\n${ANALYSIS_END}`,
    '',
  );
  return lines.join('\n');
}

/** Horizontal grouped bars, one panel per figure, two series each. */
export function renderSvg(info: RunInfo, runs: ServerRun[]): string {
  const measured = runs.filter((r) => !r.skipped);
  const p50 = info.pairs.includes(50) ? 50 : info.pairs[0]!;
  const p500 = info.pairs.includes(500) ? 500 : info.pairs[info.pairs.length - 1]!;
  // `shared`: both series in one unit, drawn on one scale; otherwise each bar set has its own.
  const panels: { title: string; note: string; shared: boolean; series: { name: string; metric: string; scale: number }[] }[] = [
    { title: 'Server CPU per 10,000 handshakes', note: 'seconds · lower is better', shared: true, series: [{ name: `${p50} pairs`, metric: `cpu@${p50}`, scale: 1 }, { name: `${p500} pairs`, metric: `cpu@${p500}`, scale: 1 }] },
    { title: 'Throughput', note: 'handshakes/s · higher is better', shared: true, series: [{ name: `${p50} pairs`, metric: `tput@${p50}`, scale: 1 }, { name: `${p500} pairs`, metric: `tput@${p500}`, scale: 1 }] },
    { title: `Memory per idle connection at ${fmt(info.idle)}`, note: 'KB · lower is better', shared: true, series: [{ name: 'RSS', metric: 'idle.rss', scale: 1 / 1024 }, { name: 'heap', metric: 'idle.heap', scale: 1 / 1024 }] },
    { title: 'New connections', note: 'per second: higher is better · CPU: lower is better', shared: false, series: [{ name: 'connections/s', metric: 'conn.rate', scale: 1 }, { name: 'server CPU µs each', metric: 'conn.cpuMs', scale: 1000 }] },
  ];
  const colors = ['#3b6ea8', '#e08a2c'];
  const labelW = 250;
  const barArea = 300;
  const panelW = labelW + barArea + 90;
  const rowH = 34;
  const panelH = 82 + measured.length * rowH + 10;
  const width = panelW * 2 + 30;
  const height = panelH * 2 + 80;
  const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;');
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="DejaVu Sans, Arial, sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="#ffffff"/>`,
    `<text x="15" y="28" font-size="17" font-weight="bold">${esc(`Signaling servers side by side${info.quick ? ' (preliminary, quick mode)' : ''}`)}</text>`,
    `<text x="15" y="48" fill="#555">${esc(`${info.startedAt.slice(0, 10)} · ${info.machine} · Node ${info.node} · server on core 0, generator on core 1 · medians of ${info.reps} run(s)`)}</text>`,
  ];
  panels.forEach((panel, i) => {
    const x0 = 15 + (i % 2) * (panelW + 10);
    const y0 = 65 + Math.floor(i / 2) * panelH;
    const values = measured.map((r) => panel.series.map((s) => med(r, s.metric) * s.scale));
    parts.push(`<text x="${x0}" y="${y0 + 16}" font-size="14" font-weight="bold">${esc(panel.title)}</text>`);
    parts.push(`<text x="${x0}" y="${y0 + 50}" fill="#555">${esc(panel.note)}</text>`);
    panel.series.forEach((s, k) => {
      const lx = x0 + labelW + k * 150;
      parts.push(`<rect x="${lx}" y="${y0 + 24}" width="10" height="10" fill="${colors[k]}"/><text x="${lx + 14}" y="${y0 + 33}">${esc(s.name)}</text>`);
    });
    const all = values.flat().filter(Number.isFinite);
    measured.forEach((r, row) => {
      const y = y0 + 62 + row * rowH;
      parts.push(`<text x="${x0 + labelW - 8}" y="${y + 17}" text-anchor="end">${esc(r.label)}</text>`);
      panel.series.forEach((_, k) => {
        const max = Math.max(...(panel.shared ? all : values.map((v) => v[k]!).filter(Number.isFinite)), 0);
        const v = values[row]![k]!;
        const w = Number.isFinite(v) && max > 0 ? Math.max(1, (v / max) * barArea) : 0;
        const by = y + k * 14;
        parts.push(`<rect x="${x0 + labelW}" y="${by}" width="${w.toFixed(1)}" height="12" fill="${colors[k]}"/>`);
        parts.push(`<text x="${x0 + labelW + w + 4}" y="${by + 10}" font-size="11">${esc(fmt(v))}</text>`);
      });
    });
  });
  parts.push('</svg>');
  return parts.join('\n');
}

/** Renders the SVG to PNG with Debian's headless Chromium; resolves false when it cannot. */
export async function renderPng(svgPath: string, pngPath: string, width: number, height: number): Promise<boolean> {
  const chromium = '/usr/bin/chromium';
  if (!existsSync(chromium)) return false;
  return new Promise((resolve) => {
    execFile(
      chromium,
      [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--hide-scrollbars',
        `--screenshot=${pngPath}`,
        `--window-size=${width},${height}`,
        pathToFileURL(svgPath).href,
      ],
      { timeout: 60000, killSignal: 'SIGKILL' },
      (error) => resolve(!error && existsSync(pngPath)),
    );
  });
}

export function svgSize(svg: string): { width: number; height: number } {
  const m = /width="(\d+)" height="(\d+)"/.exec(svg);
  return { width: Number(m?.[1] ?? 1000), height: Number(m?.[2] ?? 600) };
}

export function writeResults(dir: string, info: RunInfo, runs: ServerRun[]): { markdown: string; svg: string; json: string } {
  const markdownPath = join(dir, 'RESULTS.md');
  const svgPath = join(dir, 'chart.svg');
  const jsonPath = join(dir, 'results.json');
  const medians = Object.fromEntries(runs.map((r) => [r.key, Object.fromEntries(Object.keys(r.samples).map((m) => [m, median(r.samples[m]!)]))]));
  writeFileSync(jsonPath, `${JSON.stringify({ info, runs, medians }, null, 1)}\n`);
  writeFileSync(svgPath, `${renderSvg(info, runs)}\n`);
  writeFileSync(markdownPath, renderMarkdown(info, runs, markdownPath));
  return { markdown: markdownPath, svg: svgPath, json: jsonPath };
}
