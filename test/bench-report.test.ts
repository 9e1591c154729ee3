/**
 * The benchmark's report reads ratios the way its text says: a duel's ratio
 * is the median of the ratios within each repetition (not the ratio of the
 * two medians, which on a drifting machine pairs figures from different
 * moments), a per-repetition column lines repetitions up only when both
 * servers have every one of them, and each target is listed once.
 * @module
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { renderMarkdown, type RunInfo, type ServerRun } from '../bench/lib/report.js';

const info: RunInfo = { ...(JSON.parse(readFileSync(new URL('../bench/results.json', import.meta.url), 'utf8')) as { info: RunInfo }).info, pairs: [1, 50, 500], reps: 3 };

function rowOf(markdown: string, start: string): string {
  const line = markdown.split('\n').find((l) => l.startsWith(`| ${start}`));
  assert.ok(line, `no row starting with ${start}`);
  return line;
}

describe('benchmark report', () => {
  it('takes a duel ratio as the median of ratios within each repetition', () => {
    const sigserve: ServerRun = {
      key: 'sigserve',
      label: 'sigserve (memory)',
      notes: [],
      samples: {
        'cpu@50': [1, 2, 3],
        'duel.peerjs.mine@50': [1, 2, 3],
        'duel.peerjs.theirs@50': [2, 1, 4],
        'duel.peerjs.bad@50': [0, 0, 1],
      },
    };
    const peerjs: ServerRun = { key: 'peerjs', label: 'peerjs-server', notes: [], samples: { 'cpu@50': [2, 4] } };
    const markdown = renderMarkdown(info, [peerjs, sigserve], '');
    // Ratios 0.5, 2 and 0.75: their median is 0.75; the medians' ratio would be 1.00.
    const duel = rowOf(markdown, 'peerjs, 50 pairs');
    assert.match(duel, /\| 0\.75× \| 0\.50×, 2\.00×, 0\.75× \| 1 \|$/);
    assert.match(rowOf(markdown, 'server CPU per handshake, 50 pairs, measured at the same moment'), /0\.75× peerjs, – ws/);
    // Three repetitions against two: the per-repetition column refuses to pair them.
    assert.match(rowOf(markdown, 'server CPU per handshake, 50 pairs |'), /\| 0\.67× peerjs, – ws \| – \|/);
  });

  it('lists each repetition against the same repetition of the other server', () => {
    const sigserve: ServerRun = { key: 'sigserve', label: 'sigserve (memory)', notes: [], samples: { 'tput@50': [90, 300, 110] } };
    const peerjs: ServerRun = { key: 'peerjs', label: 'peerjs-server', notes: [], samples: { 'tput@50': [100, 100, 100] } };
    const markdown = renderMarkdown(info, [peerjs, sigserve], '');
    assert.match(rowOf(markdown, 'throughput, 50 pairs'), /\| 1\.10× peerjs \| 0\.90×, 3\.00×, 1\.10× \|/);
    assert.doesNotMatch(markdown, /measured at the same moment \(duel\)\n/, 'no duel section without duel samples');
  });

  it('names each target once when the run measured one pair count', () => {
    const sigserve: ServerRun = {
      key: 'sigserve',
      label: 'sigserve (memory)',
      notes: [],
      samples: { 'cpu@500': [1], 'tput@500': [100], 'duel.peerjs.mine@500': [0.9], 'duel.peerjs.theirs@500': [1] },
    };
    const peerjs: ServerRun = { key: 'peerjs', label: 'peerjs-server', notes: [], samples: { 'cpu@500': [1.25], 'tput@500': [80] } };
    const markdown = renderMarkdown({ ...info, pairs: [500], reps: 1 }, [peerjs, sigserve], '');
    const targets = markdown.slice(markdown.indexOf('## Against the targets'), markdown.indexOf('\n## ', markdown.indexOf('## Against the targets') + 1));
    const rows = targets.split('\n').filter((l) => l.startsWith('| ') && !l.startsWith('| measure'));
    assert.equal(new Set(rows).size, rows.length, `a target row repeats:\n${rows.join('\n')}`);
    assert.match(rowOf(targets, 'server CPU per handshake, 500 pairs |'), /\| 0\.80× peerjs, – ws \|/);
    assert.match(rowOf(targets, 'server CPU per handshake, 500 pairs, measured at the same moment'), /0\.90× peerjs/);
  });
});
