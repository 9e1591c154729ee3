/**
 * Keeps the benchmark from rotting: starts sigserve in memory mode exactly as
 * `npm run bench` does (node dist/cli.js, pinned, probe preloaded, limits
 * raised), runs the generator's smallest scenarios for a couple of seconds
 * and checks that handshakes completed with the right payloads. Speed is
 * not asserted: that is the benchmark's job, not a test's.
 * @module
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { openIdle, PairsLoad, runChurn, runPairs } from '../bench/lib/generator.js';
import { SERVERS, type RunningTarget } from '../bench/lib/targets.js';

describe('benchmark harness against sigserve (memory mode)', () => {
  let server: RunningTarget;
  const spec = SERVERS.find((s) => s.key === 'sigserve')!;

  before(async () => {
    const missing = spec.unavailable();
    assert.equal(missing, undefined, `${missing} (npm test builds dist/ first)`);
    server = await spec.start({});
  });
  after(() => server?.stop());

  it('completes 1-pair handshakes with the offer and answer intact', async () => {
    const result = await runPairs({
      target: server.target,
      pairs: 1,
      warmupMs: 300,
      measureMs: 2000,
      trickle: false,
      serverPids: server.processes.map((p) => p.pid),
      runId: 'test-plain',
    });
    assert.ok(result.handshakes > 0, 'no handshake completed in the window');
    assert.equal(result.badPayloads, 0);
    assert.equal(result.serverErrors, 0);
    assert.equal(result.lost, 0);
    assert.ok(result.serverCpuSeconds > 0 && Number.isFinite(result.cpuPer10k), 'server CPU time was not read');
    assert.ok(result.latencyMs.p50 > 0 && result.latencyMs.p50 <= result.latencyMs.p99 && result.latencyMs.p99 <= result.latencyMs.max);
  });

  it('completes trickle-ICE handshakes with every candidate in order', async () => {
    const result = await runPairs({
      target: server.target,
      pairs: 2,
      warmupMs: 200,
      measureMs: 1000,
      trickle: true,
      serverPids: server.processes.map((p) => p.pid),
      runId: 'test-trickle',
    });
    assert.ok(result.handshakes > 0, 'no trickle handshake completed');
    assert.equal(result.badPayloads, 0);
    assert.equal(result.serverErrors, 0);
    assert.equal(result.lost, 0);
  });

  it('measures a load in slices that add up, relaying nothing while it waits between them', async () => {
    const relayed = async (): Promise<number> => {
      const text = await (await fetch(`${server.target.sharerUrl}/metrics`)).text();
      let sum = 0;
      for (const line of text.split('\n')) if (line.startsWith('sigserve_relayed_total')) sum += Number(line.slice(line.lastIndexOf(' ') + 1));
      return sum;
    };
    const load = await PairsLoad.open({
      target: server.target,
      pairs: 2,
      warmupMs: 200,
      measureMs: 400,
      trickle: false,
      serverPids: server.processes.map((p) => p.pid),
      runId: 'test-sliced',
    });
    try {
      await load.measure(200, 400);
      const first = load.result();
      assert.ok(first.handshakes > 0, 'no handshake completed in the first slice');
      const paused = await relayed();
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(await relayed(), paused, 'the server relayed while the load waited between slices');
      await load.measure(100, 400);
      const both = load.result();
      assert.ok(both.handshakes > first.handshakes, 'the second slice added no handshakes');
      assert.ok(both.seconds >= 0.75 && both.seconds < 2, `measured ${both.seconds} s, not the two slices' 0.8 s`);
      assert.ok(both.serverCpuSeconds > first.serverCpuSeconds);
      assert.equal(both.badPayloads, 0);
      assert.equal(both.serverErrors, 0);
      assert.equal(both.lost, 0);
    } finally {
      await load.close();
    }
  });

  it('opens idle connections from spread source addresses and reads the server memory', async () => {
    const before = await server.memory();
    const idle = await openIdle({ target: server.target, count: 50, runId: 'test-idle', worker: 7 });
    assert.equal(idle.opened, 50);
    const during = await server.memory();
    assert.ok(during.rss > 0 && during.heapUsed > 0 && before.heapUsed > 0);
    await idle.close();
  });

  it('counts new connections', async () => {
    const result = await runChurn({ target: server.target, durationMs: 500, serverPids: server.processes.map((p) => p.pid), runId: 'test-churn', worker: 8 });
    assert.ok(result.connections > 0);
    assert.equal(result.failures, 0);
  });
});
