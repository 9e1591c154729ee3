/**
 * /healthz and /metrics as an operator sees them, over HTTP, summed over
 * every node of the topology. Black-box: runs against any Topology.
 * @module
 */
import assert from 'node:assert/strict';
import { after, afterEach, before, describe, it } from 'node:test';
import type { Topology, TopologyFactory } from '../support/topology.js';
import { connect, disconnectAll, eventually, request, waitFor } from '../support/util.js';
import { expectFailure, health, metricsTexts, sample, total } from './probe.js';

export function observabilitySuite(label: string, makeTopology: TopologyFactory): void {
  describe(`health and metrics (${label})`, () => {
    let topology: Topology;
    before(async () => {
      topology = await makeTopology();
    });
    afterEach(() => disconnectAll());
    after(() => topology.close());

    const sum = async (pick: (h: Awaited<ReturnType<typeof health>>[number]) => number): Promise<number> =>
      (await health(topology)).reduce((n, h) => n + pick(h), 0);

    it('answers GET /healthz with 200 and a small JSON body', async () => {
      for (const url of topology.urls) {
        const res = await fetch(`${url}/healthz`);
        assert.equal(res.status, 200);
        assert.match(res.headers.get('content-type') ?? '', /^application\/json/);
        const text = await res.text();
        assert.ok(text.length < 1024, 'a small body');
        const body = JSON.parse(text) as Record<string, unknown>;
        assert.equal(body['status'], 'ok');
        assert.equal(typeof body['version'], 'string');
        assert.equal(typeof body['uptimeSeconds'], 'number');
        for (const key of ['sockets', 'shares', 'routes']) assert.ok(Number.isInteger(body[key]), key);
        const registry = body['registry'] as Record<string, unknown>;
        assert.ok(Number.isInteger(registry['shares']) && Number.isInteger(registry['routes']));
        assert.equal((await fetch(`${url}/healthz`, { method: 'HEAD' })).status, 200);
      }
    });

    it('counts sockets, shares and routes in /healthz as they come and go', async () => {
      const base = { sockets: await sum((h) => h.sockets), shares: await sum((h) => h.shares), routes: await sum((h) => h.routes) };
      const registryBase = (await health(topology))[0]!.registry;
      const sharer = await connect(topology.url('sharer'));
      const joiner = await connect(topology.url('joiner'));
      await eventually(async () => (await sum((h) => h.sockets)) === base.sockets + 2, 5000, 'two more sockets');
      await request(sharer, 'share', 'ob-health');
      await request(sharer, 'share', 'ob-health-2');
      assert.equal(await sum((h) => h.shares), base.shares + 2);
      const launched = waitFor(sharer, 'launchResponse');
      await request(joiner, 'launch', 'ob-health', 'u', 'offer');
      await launched;
      assert.equal(await sum((h) => h.routes), base.routes + 1);
      // Every node sees the same shared registry.
      await eventually(
        async () => {
          const all = await health(topology);
          return all.every((h) => h.registry.shares === registryBase.shares + 2 && h.registry.routes === registryBase.routes + 1);
        },
        5000,
        'registry counts on every node',
      );
      joiner.disconnect();
      await eventually(async () => (await sum((h) => h.routes)) === base.routes, 5000, 'route gone with the joiner');
      sharer.disconnect();
      await eventually(
        async () => (await sum((h) => h.sockets)) === base.sockets && (await sum((h) => h.shares)) === base.shares,
        5000,
        'sockets and shares back',
      );
      await eventually(
        async () => (await health(topology)).every((h) => h.registry.shares === registryBase.shares && h.registry.routes === registryBase.routes),
        5000,
        'registry counts back',
      );
    });

    it('serves Prometheus text on GET /metrics with the documented metrics', async () => {
      for (const url of topology.urls) {
        const res = await fetch(`${url}/metrics`);
        assert.equal(res.status, 200);
        assert.match(res.headers.get('content-type') ?? '', /^text\/plain/);
        const text = await res.text();
        assert.match(text, /^# TYPE sigserve_connected_sockets gauge$/m);
        assert.match(text, /^# TYPE sigserve_active_shares gauge$/m);
        assert.match(text, /^# TYPE sigserve_relayed_total counter$/m);
        assert.match(text, /^# TYPE sigserve_errors_total counter$/m);
        assert.match(text, /^# TYPE sigserve_relay_latency_seconds histogram$/m);
        assert.match(text, /^# HELP sigserve_relay_latency_seconds /m);
        assert.match(text, /^sigserve_relayed_total\{kind="launch"\} \d+/m);
        assert.match(text, /^sigserve_relayed_total\{kind="answer"\} \d+/m);
      }
    });

    it('moves the gauges with sockets and shares', async () => {
      const sockets = await total(topology, 'sigserve_connected_sockets');
      const shares = await total(topology, 'sigserve_active_shares');
      const a = await connect(topology.url('sharer'));
      const b = await connect(topology.url('joiner'));
      await eventually(async () => (await total(topology, 'sigserve_connected_sockets')) === sockets + 2, 5000, 'connected_sockets +2');
      await request(a, 'share', 'ob-gauge');
      assert.equal(await total(topology, 'sigserve_active_shares'), shares + 1);
      a.disconnect();
      b.disconnect();
      await eventually(
        async () => (await total(topology, 'sigserve_connected_sockets')) === sockets && (await total(topology, 'sigserve_active_shares')) === shares,
        5000,
        'gauges back',
      );
    });

    it('counts relayed launches and answers and observes their latency', async () => {
      const launches = await total(topology, 'sigserve_relayed_total', { kind: 'launch' });
      const answers = await total(topology, 'sigserve_relayed_total', { kind: 'answer' });
      const launchCount = await total(topology, 'sigserve_relay_latency_seconds_count', { kind: 'launch' });
      const answerCount = await total(topology, 'sigserve_relay_latency_seconds_count', { kind: 'answer' });
      const sharer = await connect(topology.url('sharer'));
      const joiner = await connect(topology.url('joiner'));
      await request(sharer, 'share', 'ob-relay');
      const launched = waitFor(sharer, 'launchResponse');
      await request(joiner, 'launch', 'ob-relay', 'u', 'offer');
      await launched;
      const launched2 = waitFor(sharer, 'launchResponse');
      await request(joiner, 'launch', 'ob-relay', 'u', 'candidate');
      await launched2;
      const answered = waitFor(joiner, 'answerResponse');
      await request(sharer, 'answer', 'ob-relay', 'u', 'answer');
      await answered;
      await eventually(
        async () =>
          (await total(topology, 'sigserve_relayed_total', { kind: 'launch' })) === launches + 2 &&
          (await total(topology, 'sigserve_relayed_total', { kind: 'answer' })) === answers + 1,
        5000,
        'relayed_total moved',
      );
      assert.equal(await total(topology, 'sigserve_relay_latency_seconds_count', { kind: 'launch' }), launchCount + 2);
      assert.equal(await total(topology, 'sigserve_relay_latency_seconds_count', { kind: 'answer' }), answerCount + 1);
      // The +Inf bucket holds every observation; the sum is a sane number of seconds.
      const texts = await metricsTexts(topology);
      const inf = texts.reduce((n, t) => n + sample(t, 'sigserve_relay_latency_seconds_bucket', { kind: 'launch', le: '+Inf' }), 0);
      assert.equal(inf, launchCount + 2);
      const seconds = texts.reduce((n, t) => n + sample(t, 'sigserve_relay_latency_seconds_sum', { kind: 'launch' }), 0);
      assert.ok(seconds >= 0 && seconds < 60, `latency sum ${seconds}`);
    });

    it('counts errors by code', async () => {
      const code = (c: string): Promise<number> => total(topology, 'sigserve_errors_total', { code: c });
      const before = { noSharer: await code('no-sharer'), bad: await code('bad-request'), large: await code('too-large'), gone: await code('sharer-gone') };
      const joiner = await connect(topology.url('joiner'));
      await expectFailure(joiner, 'no-sharer', 'launch', 'ob-nobody', 'u', 'offer');
      await expectFailure(joiner, 'no-sharer', 'launch', 'ob-nobody', 'offer');
      await expectFailure(joiner, 'bad-request', 'launch', 42, 'u', 'offer');
      await expectFailure(joiner, 'too-large', 'launch', 'ob-nobody', 'u', 'x'.repeat(70_000));
      const sharer = await connect(topology.url('sharer'));
      await request(sharer, 'share', 'ob-gone');
      const launched = waitFor(sharer, 'launchResponse');
      await request(joiner, 'launch', 'ob-gone', 'u', 'offer');
      await launched;
      const gone = waitFor(joiner, 'signalingError');
      sharer.disconnect();
      await gone;
      await eventually(
        async () =>
          (await code('no-sharer')) === before.noSharer + 2 &&
          (await code('bad-request')) === before.bad + 1 &&
          (await code('too-large')) === before.large + 1 &&
          (await code('sharer-gone')) === before.gone + 1,
        5000,
        'errors_total by code',
      );
    });
  });
}
