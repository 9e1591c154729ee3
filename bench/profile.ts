/**
 * Summaries of the profiles `npm run bench` can take:
 *
 *   tsx bench/profile.ts cpu FILE.cpuprofile [--top 30]
 *     self time by package / source file and by function
 *   tsx bench/profile.ts heap FILE.heapsnapshot [--per 2000] [--top 30]
 *     retained-by-type totals (self sizes by node type and constructor),
 *     divided by --per (the idle connection count) for bytes per connection
 *
 * Take them with `npm run bench -- --quick --only sigserve --cpu-prof DIR
 * --heap-snapshot DIR`.
 * @module
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

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

const { values, positionals } = parseArgs({
  options: { top: { type: 'string', default: '30' }, per: { type: 'string', default: '1' } },
  allowPositionals: true,
});
const [mode, file] = positionals;
if (mode === 'cpu' && file) cpu(file, Number(values.top));
else if (mode === 'heap' && file) heap(file, Number(values.per), Number(values.top));
else {
  console.error('usage: tsx bench/profile.ts cpu FILE.cpuprofile [--top N] | heap FILE.heapsnapshot [--per CONNECTIONS] [--top N]');
  process.exitCode = 2;
}
