/**
 * Summaries of the profiles `npm run bench` can take:
 *
 *   tsx bench/profile.ts cpu FILE.cpuprofile [--top 30]
 *     self time by package / source file and by function
 *   tsx bench/profile.ts heap FILE.heapsnapshot [--per 2000] [--top 30]
 *     retained-by-type totals (self sizes by node type and constructor),
 *     divided by --per (the idle connection count) for bytes per connection
 *   tsx bench/profile.ts perf FILE.txt [--freq 1500] [--per PID=HANDSHAKES,...]
 *     on-CPU samples of `perf record -g -F FREQ` (kernel and user, GC
 *     threads included), from `perf script -F pid,ip,sym,dso`, by process
 *     and by where they went: GC, the kernel (write, read, scheduling), or
 *     the innermost JavaScript frame's owner; with --per, µs per handshake.
 *     JIT frames get their names from the servers' jitdump files: start
 *     them with `--server-flags=--perf-prof` (files land in the working
 *     directory), record with `perf record -k mono -g`, then
 *     `perf inject --jit -i perf.data -o perf.jit.data` and run
 *     `perf script` on that. (`--perf-basic-prof` writes a map that keeps
 *     every address it ever gave out, so a sample may get the name of code
 *     that lived there before: bench/RESULTS.md, phase 19.)
 *
 * Take them with `npm run bench -- --quick --only sigserve --cpu-prof DIR
 * --heap-snapshot DIR`.
 * @module
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { pathToFileURL } from 'node:url';

interface CpuNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface CpuProfile {
  nodes: CpuNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

/** Where a frame's code lives: an npm package, a project file, Node itself, or V8. */
function owner(url: string, functionName: string): string {
  if (!url) return functionName.startsWith('(') ? functionName : '(native / V8)';
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg) {
    const nested = url.split('node_modules/');
    return nested.length > 2 ? `${pkg[1]} > ${/^((?:@[^/]+\/)?[^/]+)/.exec(nested[nested.length - 1]!)?.[1]}` : pkg[1]!;
  }
  if (url.startsWith('node:')) return `node:${url.slice(5).split('/')[0]}`;
  const project = /\/(dist|src|bench)\/(.*)$/.exec(url);
  return project ? `${project[1]}/${project[2]}` : url;
}

function cpu(file: string, top: number): void {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const self = new Map<number, number>();
  for (let i = 0; i < profile.samples.length; i++) {
    self.set(profile.samples[i]!, (self.get(profile.samples[i]!) ?? 0) + (profile.timeDeltas[i] ?? 0));
  }
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const total = [...self.values()].reduce((a, b) => a + b, 0);
  const byOwner = new Map<string, number>();
  const byFunction = new Map<string, number>();
  for (const [id, us] of self) {
    const frame = byId.get(id)!.callFrame;
    const o = owner(frame.url, frame.functionName);
    byOwner.set(o, (byOwner.get(o) ?? 0) + us);
    const f = `${frame.functionName || '(anonymous)'}  ${o}:${frame.lineNumber + 1}`;
    byFunction.set(f, (byFunction.get(f) ?? 0) + us);
  }
  const idle = [...self].filter(([id]) => byId.get(id)!.callFrame.functionName === '(idle)').reduce((a, [, us]) => a + us, 0);
  const busy = total - idle;
  const show = (title: string, map: Map<string, number>): void => {
    console.log(`\n${title} (share of busy time, ${(busy / 1e6).toFixed(2)} s busy of ${(total / 1e6).toFixed(2)} s)`);
    for (const [name, us] of [...map].filter(([n]) => !n.startsWith('(idle)')).sort((a, b) => b[1] - a[1]).slice(0, top)) {
      console.log(`${((us / busy) * 100).toFixed(1).padStart(6)} %  ${name}`);
    }
  };
  show('self time by owner', byOwner);
  show('self time by function', byFunction);
}

interface HeapSnapshot {
  snapshot: { meta: { node_fields: string[]; node_types: [string[], ...unknown[]] } };
  nodes: number[];
  strings: string[];
}

function heap(file: string, per: number, top: number): void {
  const snap = JSON.parse(readFileSync(file, 'utf8')) as HeapSnapshot;
  const fields = snap.snapshot.meta.node_fields;
  const types = snap.snapshot.meta.node_types[0];
  const width = fields.length;
  const iType = fields.indexOf('type');
  const iName = fields.indexOf('name');
  const iSize = fields.indexOf('self_size');
  const groups = new Map<string, { count: number; bytes: number }>();
  let total = 0;
  for (let i = 0; i < snap.nodes.length; i += width) {
    const type = types[snap.nodes[i + iType]!]!;
    const size = snap.nodes[i + iSize]!;
    let name = snap.strings[snap.nodes[i + iName]!]!;
    // Strings and code are grouped by type, not by content.
    if (type === 'string' || type === 'concatenated string' || type === 'sliced string' || type === 'code' || type === 'number') name = '';
    if (name.length > 60) name = `${name.slice(0, 57)}...`;
    const key = `${type}${name ? ` ${name}` : ''}`;
    const g = groups.get(key) ?? { count: 0, bytes: 0 };
    g.count++;
    g.bytes += size;
    groups.set(key, g);
    total += size;
  }
  console.log(`${(total / 1048576).toFixed(1)} MB in the heap snapshot; per ${per} connections: ${(total / per / 1024).toFixed(2)} KB each (including the baseline)`);
  console.log('\n   bytes/conn   objects/conn   type and constructor');
  for (const [key, g] of [...groups].sort((a, b) => b[1].bytes - a[1].bytes).slice(0, top)) {
    console.log(`${(g.bytes / per).toFixed(0).padStart(12)}   ${(g.count / per).toFixed(2).padStart(12)}   ${key}`);
  }
}

/** Frames of V8's collector, on the main thread or its helpers. */
const GC_FRAME = /Scavenge|MarkCompact|ConcurrentMarking|IncrementalMarking|Sweeper|MinorMarkSweep|Heap::CollectGarbage/;
/** What a kernel sample was doing, by the system call under it. */
const KERNEL_WORK: [RegExp, string][] = [
  [/sendmsg|ksys_write|do_writev/, 'kernel: write'],
  [/recvmsg|ksys_read|do_readv/, 'kernel: read'],
  [/epoll|schedule|futex|finish_task_switch/, 'kernel: epoll and scheduling'],
];

/** Where one `perf script` sample (its frames, leaf first) went. */
export function perfCategory(frames: readonly string[]): string {
  if (frames.some((f) => GC_FRAME.test(f))) return 'GC';
  if (frames[0]?.includes('[kernel')) return KERNEL_WORK.find(([pattern]) => frames.some((f) => pattern.test(f)))?.[1] ?? 'kernel: other';
  for (const frame of frames) {
    // `JS:*name url:line:column+0xoffset (/tmp/perf-PID.map)`; the name may be empty.
    const js = /^JS:[*^~]?(.*?) ?(\S+):\d+:\d+(?:\+0x[0-9a-f]+)? \(/.exec(frame);
    if (js) return owner(js[2]!, js[1]!);
  }
  return '(no JavaScript frame: the event loop, V8, the compiler)';
}

/** Samples per process and category, from `perf script -F pid,ip,sym,dso` text. */
export function perfSamples(text: string): Map<number, Map<string, number>> {
  const byPid = new Map<number, Map<string, number>>();
  let pid: number | undefined;
  let frames: string[] = [];
  const end = (): void => {
    if (pid !== undefined && frames.length > 0) {
      const counts = byPid.get(pid) ?? new Map<string, number>();
      const category = perfCategory(frames);
      counts.set(category, (counts.get(category) ?? 0) + 1);
      byPid.set(pid, counts);
    }
    pid = undefined;
    frames = [];
  };
  for (const line of text.split('\n')) {
    const header = /^\s*(\d+)\s*$/.exec(line);
    if (header) {
      end();
      pid = Number(header[1]);
    } else if (line.trim() === '') {
      end();
    } else if (pid !== undefined) {
      // `address symbol (dso)`
      frames.push(line.trim().replace(/^[0-9a-f]+ /, ''));
    }
  }
  end();
  return byPid;
}

function perf(file: string, freq: number, per: Map<number, number>): void {
  const byPid = perfSamples(readFileSync(file, 'utf8'));
  const pids = [...byPid.keys()].filter((p) => per.size === 0 || per.has(p));
  const categories = [...new Set(pids.flatMap((p) => [...byPid.get(p)!.keys()]))];
  const count = (p: number, category: string): number => byPid.get(p)!.get(category) ?? 0;
  const total = (p: number): number => [...byPid.get(p)!.values()].reduce((a, b) => a + b, 0);
  // A sample is 1/freq s of CPU: per handshake with --per, else a share of the process's samples.
  const value = (p: number, samples: number): string =>
    per.has(p) ? ((samples * 1e6) / freq / per.get(p)!).toFixed(2) : `${((samples / total(p)) * 100).toFixed(1)} %`;
  // Largest first, over all the processes shown.
  categories.sort((a, b) => pids.reduce((sum, p) => sum + count(p, b) - count(p, a), 0));
  console.log(`${per.size > 0 ? 'µs per handshake' : 'share of samples'} by process (${freq} Hz)\n`);
  console.log(['category', ...pids.map(String)].map((c, i) => (i === 0 ? c.padEnd(56) : c.padStart(10))).join(''));
  for (const category of categories) {
    console.log([category.padEnd(56), ...pids.map((p) => value(p, count(p, category)).padStart(10))].join(''));
  }
  console.log(['total'.padEnd(56), ...pids.map((p) => value(p, total(p)).padStart(10))].join(''));
}

/** The command line, when this file is run rather than imported (the tests import its parsers). */
function main(): void {
  const { values, positionals } = parseArgs({
    options: { top: { type: 'string', default: '30' }, per: { type: 'string', default: '' }, freq: { type: 'string', default: '1500' } },
    allowPositionals: true,
  });
  const [mode, file] = positionals;
  if (mode === 'cpu' && file) cpu(file, Number(values.top));
  else if (mode === 'heap' && file) heap(file, Number(values.per || '1'), Number(values.top));
  else if (mode === 'perf' && file) {
    const per = new Map((values.per ? values.per.split(',') : []).map((pair) => pair.split('=').map(Number) as [number, number]));
    perf(file, Number(values.freq), per);
  } else {
    console.error(
      'usage: tsx bench/profile.ts cpu FILE.cpuprofile [--top N] | heap FILE.heapsnapshot [--per CONNECTIONS] [--top N] | perf FILE.txt [--freq HZ] [--per PID=HANDSHAKES,...]',
    );
    process.exitCode = 2;
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) main();
