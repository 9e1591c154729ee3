/**
 * Faults of a real cluster (server processes on a real redis-server): a node
 * killed with -9 mid-handshake, a node stopped with SIGTERM, Redis down and
 * restarted empty while shares are open, and no key left once every client
 * has gone.
 * @module
 */
import assert from 'node:assert/strict';
import { after, afterEach, describe, it } from 'node:test';
import type { SignalingErrorBody } from '../../src/protocol/index.js';
import { startCluster, TEST_CLUSTER_SETTINGS, type TestCluster } from '../support/cluster.js';
import { keysUnder } from '../support/redis.js';
import { connect, disconnectAll, eventually, request, waitFor, type TestSocket } from '../support/util.js';

const TIMEOUT = Number(TEST_CLUSTER_SETTINGS.nodeTimeout);

type Ack = { ok: boolean; error?: { code: string; message: string } };

async function readyz(url: string): Promise<number> {
  return (await fetch(`${url}/readyz`)).status;
}

/** Launches until `joiner`'s offer reaches `sharer`; returns the uid. */
async function exchange(joiner: TestSocket, sharer: TestSocket, name: string, uid: string): Promise<void> {
  const launched = waitFor<[string, unknown]>(sharer, 'launchResponse', 5000);
  assert.deepEqual(await request(joiner, 'launch', name, uid, { sdp: 'offer' }), { ok: true, joinerUID: uid });
  assert.deepEqual(await launched, [uid, { sdp: 'offer' }]);
  const answered = waitFor<[unknown]>(joiner, 'answerResponse', 5000);
  assert.deepEqual(await request(sharer, 'answer', name, uid, { sdp: 'answer' }), { ok: true });
  assert.deepEqual(await answered, [{ sdp: 'answer' }]);
}

describe('cluster faults', () => {
  let cluster: TestCluster | undefined;
  afterEach(async () => {
    disconnectAll();
    await cluster?.close();
    cluster = undefined;
  });
  after(() => disconnectAll());

  it('kill -9 of a node mid-handshake: its joiners get sharer-gone, it gets no new joiners, its keys go', async () => {
    cluster = await startCluster(2);
    const [node0, node1] = cluster.nodes as [(typeof cluster.nodes)[0], (typeof cluster.nodes)[0]];
    const doomed = await connect(node0.url);
    assert.equal((await request<Ack>(doomed, 'share', 'k9')).ok, true);
    const joiner = await connect(node1.url);
    // Mid-handshake: the offer reached the sharer, no answer yet.
    const launched = waitFor<[string, unknown]>(doomed, 'launchResponse', 5000);
    await request(joiner, 'launch', 'k9', 'mid', { sdp: 'offer' });
    await launched;
    const survivor = await connect(node1.url);
    assert.equal((await request<Ack>(survivor, 'share', 'k9')).ok, true);
    const redis = cluster.redis.client();
    assert.ok((await keysUnder(redis, cluster.prefix)).some((k) => k.includes(node0.nodeId)));

    const gone = waitFor<[SignalingErrorBody]>(joiner, 'signalingError', TIMEOUT + 5000);
    await node0.kill();
    const [body] = await gone;
    assert.equal(body.code, 'sharer-gone');
    assert.equal(body.name, 'k9');
    assert.equal(body.joinerUID, 'mid');
    // The same joiner is routed afresh, to the survivor, and completes.
    await exchange(joiner, survivor, 'k9', 'mid');
    // New joiners only ever reach the survivor.
    for (let i = 0; i < 8; i++) {
      const next = await connect(node1.url);
      await exchange(next, survivor, 'k9', `new-${i}`);
      next.disconnect();
    }
    await eventually(async () => (await keysUnder(redis, cluster!.prefix)).every((k) => !k.includes(node0.nodeId)), TIMEOUT + 5000, 'dead node reaped');
    const sharers = await redis.hkeys(`${cluster.prefix}s:k9`);
    assert.equal(sharers.length, 1);
    assert.ok(sharers[0]!.startsWith(`${node1.nodeId}#`));
    assert.ok(node1.logs.some((l) => l['msg'] === 'node stopped heartbeating: its sockets are gone' && l['deadNode'] === node0.nodeId));
  });

  it('SIGTERM removes a node\'s registrations at once and tells its joiners', async () => {
    cluster = await startCluster(2);
    const [node0, node1] = cluster.nodes as [(typeof cluster.nodes)[0], (typeof cluster.nodes)[0]];
    const sharer = await connect(node0.url);
    await request(sharer, 'share', 'term', { maxJoins: 5 });
    const joiner = await connect(node1.url);
    await exchange(joiner, sharer, 'term', 'j');
    const outgoing = await connect(node0.url);
    const other = await connect(node1.url);
    await request(other, 'share', 'term-2');
    await exchange(outgoing, other, 'term-2', 'o');
    const gone = waitFor<[SignalingErrorBody]>(joiner, 'signalingError', TIMEOUT);
    assert.equal(await node0.stop(), 0);
    const redis = cluster.redis.client();
    // At once: no waiting for a heartbeat to lapse.
    assert.deepEqual((await keysUnder(redis, cluster.prefix)).filter((k) => k.includes(node0.nodeId)), []);
    assert.deepEqual(await redis.hkeys(`${cluster.prefix}s:term`), []);
    assert.equal(await redis.hexists(`${cluster.prefix}r:term-2`, 'o'), 0);
    assert.equal((await gone)[0].code, 'sharer-gone');
    const late = await connect(node1.url);
    assert.equal((await request<Ack>(late, 'launch', 'term', 'late', 'offer')).error?.code, 'no-sharer');
  });

  it('Redis away, then restarted empty: requests that need it fail with internal meanwhile, shares are restored and work after', async () => {
    cluster = await startCluster(2);
    const [node0, node1] = cluster.nodes as [(typeof cluster.nodes)[0], (typeof cluster.nodes)[0]];
    const sharers = [await connect(node0.url), await connect(node0.url)];
    await request(sharers[0]!, 'share', 'rr', { maxJoins: 3 });
    await request(sharers[1]!, 'share', 'rr-2');
    const early = await connect(node1.url);
    await exchange(early, sharers[0]!, 'rr', 'early');
    const crossShare = await connect(node1.url);
    await request(crossShare, 'share', 'rr-3');
    const crossJoiner = await connect(node0.url);
    await exchange(crossJoiner, crossShare, 'rr-3', 'cj');

    await cluster.redis.halt();
    try {
      await eventually(async () => (await readyz(node0.url)) === 503 && (await readyz(node1.url)) === 503, TIMEOUT + 5000, '/readyz 503');
      const health = (await (await fetch(`${node1.url}/healthz`)).json()) as { status: string; mode: string; cluster: { ready: boolean } };
      assert.equal(health.mode, 'cluster');
      assert.equal(health.status, 'degraded');
      assert.equal(health.cluster.ready, false);
      const newcomer = await connect(node1.url);
      const launch = await request<Ack>(newcomer, 'launch', 'rr', 'newcomer', 'offer');
      assert.equal(launch.error?.code, 'internal');
      assert.match(launch.error!.message, /Redis|cluster/);
      const share = await request<Ack>(newcomer, 'share', 'rr-new');
      assert.equal(share.error?.code, 'internal');
      // A route across nodes made before goes on over the nodes' direct link, which needs no Redis.
      const relayed = waitFor<[string, unknown]>(sharers[0]!, 'launchResponse', 5000);
      assert.deepEqual(await request<Ack>(early, 'launch', 'rr', 'early', 'candidate'), { ok: true, joinerUID: 'early' });
      assert.deepEqual(await relayed, ['early', 'candidate']);
      newcomer.disconnect();
    } finally {
      await cluster.redis.resume();
    }
    await eventually(async () => (await readyz(node0.url)) === 200 && (await readyz(node1.url)) === 200, 15_000, '/readyz 200 again');
    // Routes made before the outage still carry the exchange, both ways.
    await exchange(early, sharers[0]!, 'rr', 'early');
    await exchange(crossJoiner, crossShare, 'rr-3', 'cj');
    // The shares are registered again: new joiners reach them, and maxJoins still counts the early joiner.
    const redis = cluster.redis.client();
    await eventually(async () => (await redis.hlen(`${cluster!.prefix}s:rr`)) === 1, 5000, 'share restored');
    for (const uid of ['after-1', 'after-2']) {
      const j = await connect(node1.url);
      await exchange(j, sharers[0]!, 'rr', uid);
    }
    const full = await connect(node1.url);
    assert.equal((await request<Ack>(full, 'launch', 'rr', 'after-3', 'offer')).error?.code, 'share-full');
    await exchange(await connect(node1.url), sharers[1]!, 'rr-2', 'x');
    // The uid of a route made before the restart is still taken.
    assert.equal((await request<Ack>(await connect(node1.url), 'launch', 'rr-3', 'cj', 'offer')).error?.code, 'uid-taken');
    // Then a hard restart (SIGKILL) while shares are open.
    await cluster.redis.restart({ hard: true });
    await eventually(async () => (await redis.hlen(`${cluster!.prefix}s:rr-2`)) === 1, 15_000, 'share restored after restart');
    // Ready again only once each node's subscriber listens again: a relay
    // published before then would reach nobody (pub/sub keeps nothing).
    await eventually(async () => (await readyz(node0.url)) === 200 && (await readyz(node1.url)) === 200, 15_000, '/readyz 200 after restart');
    const after = (await (await fetch(`${node1.url}/healthz`)).json()) as { cluster: { ready: boolean; listening: boolean } };
    assert.deepEqual([after.cluster.ready, after.cluster.listening], [true, true]);
    await exchange(await connect(node1.url), sharers[1]!, 'rr-2', 'y');
  });

  it('relays across nodes take the direct link once it is up: no PUBLISH, /healthz counts it, a killed peer closes it', async () => {
    cluster = await startCluster(2);
    const [node0, node1] = cluster.nodes as [(typeof cluster.nodes)[0], (typeof cluster.nodes)[0]];
    const sharer = await connect(node0.url);
    await request(sharer, 'share', 'dl', { maxJoins: 100 });
    await exchange(await connect(node1.url), sharer, 'dl', 'first');
    const links = async (url: string): Promise<number> => ((await (await fetch(`${url}/healthz`)).json()) as { cluster: { links: number } }).cluster.links;
    // The joiners' node dialed the sharers' for the offer, and the sharers' node the joiners' for the answer.
    await eventually(async () => (await links(node0.url)) === 1 && (await links(node1.url)) === 1, 5000, 'a link each way');
    const redis = cluster.redis.client();
    const publishes = async (): Promise<number> => Number(/cmdstat_publish:calls=(\d+)/.exec(await redis.info('commandstats'))?.[1] ?? 0);
    const before = await publishes();
    for (let i = 0; i < 20; i++) await exchange(await connect(node1.url), sharer, 'dl', `u${i}`);
    assert.equal((await publishes()) - before, 0, 'no relay went through Redis');
    await node0.kill();
    await eventually(async () => (await links(node1.url)) === 0, 5000, 'the link to the killed node closed');
    assert.ok(node1.logs.some((l) => l['msg'] === 'cluster link closed: messages to that node go over Redis' && l['peerNode'] === node0.nodeId));
  });

  it('without direct links (CLUSTER_LINK_HOST=off), a relay across nodes fails with internal while Redis is away', async () => {
    cluster = await startCluster(2, { clusterLinkHost: 'off' });
    const [node0, node1] = cluster.nodes as [(typeof cluster.nodes)[0], (typeof cluster.nodes)[0]];
    const sharer = await connect(node0.url);
    await request(sharer, 'share', 'nl');
    const joiner = await connect(node1.url);
    await exchange(joiner, sharer, 'nl', 'j');
    await cluster.redis.halt();
    try {
      await eventually(async () => (await readyz(node1.url)) === 503, TIMEOUT + 5000, '/readyz 503');
      // A clear error, not silence.
      const relay = await request<Ack>(joiner, 'launch', 'nl', 'j', 'candidate');
      assert.equal(relay.error?.code, 'internal');
    } finally {
      await cluster.redis.resume();
    }
    await eventually(async () => (await readyz(node0.url)) === 200 && (await readyz(node1.url)) === 200, 15_000, '/readyz 200 again');
    await exchange(joiner, sharer, 'nl', 'j');
  });

  it('leaves no key under the prefix once every client has left', async () => {
    cluster = await startCluster(2);
    const redis = cluster.redis.client();
    for (let round = 0; round < 3; round++) {
      const sharers = await Promise.all(cluster.nodes.map((n) => connect(n.url)));
      for (const [i, s] of sharers.entries()) await request(s, 'share', `left-${round}`, i === 0 ? { maxJoins: 4 } : { ttl: 60_000 });
      await request(sharers[0]!, 'share');
      const joiners = await Promise.all([0, 1, 0, 1].map((i) => connect(cluster!.nodes[i]!.url)));
      for (const [i, j] of joiners.entries()) {
        const arrivals = sharers.map((s) => waitFor(s, 'launchResponse', 5000));
        j.emit('launch', `left-${round}`, `u${i}`, 'offer');
        await Promise.any(arrivals);
        for (const a of arrivals) a.catch(() => undefined);
      }
      assert.ok((await keysUnder(redis, cluster.prefix)).length > 0);
      if (round === 1) await request(sharers[1]!, 'unshare');
      for (const j of round === 2 ? joiners : joiners.reverse()) j.disconnect();
      for (const s of sharers) s.disconnect();
    }
    await eventually(async () => (await keysUnder(redis, cluster!.prefix)).length === 0, 10_000, 'no keys left').catch(async (error: unknown) => {
      assert.deepEqual(await keysUnder(redis, cluster!.prefix), [], String(error));
    });
  });
});
