/**
 * Keeps the scale scenario from rotting: `bench/run.ts --scenarios scale`
 * at a small size (600 idle connections over 3 nodes behind a real
 * redis-server, pairs relaying across nodes meanwhile), run as the command
 * runs it, into a temporary folder. Checks what it reports, not speed.
 * @module
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { ROOT } from '../bench/lib/procs.js';
import type { ScaleResult } from '../bench/lib/scale.js';

describe('benchmark scale scenario', () => {
  const out = mkdtempSync(join(tmpdir(), 'sigserve-scale-'));
  after(() => rmSync(out, { recursive: true, force: true }));

  it('holds idle connections over several nodes while relaying handshakes across them, and reports memory per node', async () => {
    const args = ['--import', 'tsx', 'bench/run.ts', '--quick', '--scenarios', 'scale', '--scale-total', '600', '--scale-nodes', '3', '--out', out];
    const child = spawn(process.execPath, args, { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] });
    let log = '';
    child.stderr.on('data', (chunk: Buffer) => (log += chunk.toString()));
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    assert.equal(code, 0, log);
    const result = JSON.parse(readFileSync(join(out, 'scale.json'), 'utf8')) as ScaleResult;
    assert.equal(result.opened, 600, log);
    assert.equal(result.nodes.length, 3);
    assert.deepEqual(result.reported, result.nodes.map((n) => n.connections), 'what each node reports is what was sent to it');
    assert.equal(result.nodes.reduce((s, n) => s + n.connections, 0), 600);
    for (const node of result.nodes) assert.ok(node.rssAfter > 0 && node.heapAfter > 0);
    assert.ok(result.pairs.handshakes > 0, 'handshakes completed across nodes');
    assert.equal(result.pairs.badPayloads, 0);
    assert.equal(result.pairs.serverErrors, 0);
    assert.equal(result.pairs.lost, 0);
    assert.match(readFileSync(join(out, 'scale.md'), 'utf8'), /## Scale: 600 idle connections on 3 nodes behind Redis/);
  });
});
