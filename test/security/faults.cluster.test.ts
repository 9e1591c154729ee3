/**
 * Hardening in cluster mode (server processes on a real redis-server):
 * per-address budgets hold across nodes; Redis frozen (SIGSTOP) under
 * traffic and thawed (SIGCONT); a node restarted during a burst of joins.
 * Every process here was started by this test (through test/support) and is
 * signalled by its PID.
 */
import assert from 'node:assert/strict';
import { get } from 'node:http';
import { after, afterEach, describe, it } from 'node:test';
import type { SignalingErrorBody } from '../../src/protocol/index.js';
import { startCluster, startNode, TEST_CLUSTER_SETTINGS, type TestCluster } from '../support/cluster.js';
import { keysUnder } from '../support/redis.js';
import { health } from '../support/topology.js';
import { connect, disconnectAll, eventually, request, waitFor, type TestSocket } from '../support/util.js';

type Ack = { ok: boolean; error?: { code: string; message: string } };

const from = (address: string): Record<string, string> => ({ 'x-forwarded-for': address });

function pollingHandshake(url: string, headers: Record<string, string>): Promise<number> {
  return new Promise((resolve, reject) => {
    get(`${url}/socket.io/?EIO=4&transport=polling`, { headers }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    }).on('error', reject);
  });
}

/** Resolves with `work`'s value, or fails if it takes longer than `ms`: nothing may hang. */
async function within<T>(ms: number, what: string, work: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what} took more than ${ms} ms`)), ms)));
  try {
    return await Promise.race([work, late]);
  } finally {
    clearTimeout(timer);
  }
}

async function exchange(joiner: TestSocket, sharer: TestSocket, name: string, uid: string): Promise<void> {
  const launched = waitFor<[string, unknown]>(sharer, 'launchResponse', 5000);
  assert.deepEqual(await request(joiner, 'launch', name, uid, 'offer'), { ok: true, joinerUID: uid });
  assert.deepEqual(await launched, [uid, 'offer']);
  const answered = waitFor<[unknown]>(joiner, 'answerResponse', 5000);
  assert.deepEqual(await request(sharer, 'answer', name, uid, 'answer'), { ok: true });
  assert.deepEqual(await answered, ['answer']);
}

async function allClear(cluster: TestCluster): Promise<void> {
  const redis = cluster.redis.client();
  await eventually(
    async () =>
      (await health(cluster)).every((h) => h.sockets === 0 && h.shares === 0 && h.routes === 0 && h.registry.shares === 0 && h.registry.routes === 0) &&
      (await keysUnder(redis, cluster.prefix)).length === 0,
    15_000,
    'every count at zero on every node and no key under the prefix',
  );
}

describe('hardening in cluster mode', () => {
  let cluster: TestCluster | undefined;
  afterEach(async () => {
    disconnectAll();
    await cluster?.close();
    cluster = undefined;
  });
  after(() => disconnectAll());

  it('counts per-address connection and event budgets across nodes (Redis store)', async () => {
    cluster = await startCluster(2, { addressConnectRate: 1, addressEventRate: 5, trustedProxies: 'loopback' });
    const [a, b] = cluster.urls as [string, string];
    // 10 connections per 10 s window for the address, wherever they land.
    const statuses: number[] = [];
    for (let i = 0; i < 12; i++) statuses.push(await pollingHandshake(i % 2 === 0 ? a : b, from('198.51.100.20')));
    assert.deepEqual(statuses, [...Array(10).fill(200), 403, 403]);

    // 50 events per window: spent on node 0, node 1 refuses within a few.
    const onA = await connect(a, { extraHeaders: from('198.51.100.21') });
    const onB = await connect(b, { extraHeaders: from('198.51.100.21') });
    let sentA = 0;
    for (; sentA < 200; sentA++) {
      const ack = await request<Ack>(onA, 'unshare');
      if (!ack.ok) {
        assert.equal(ack.error?.code, 'rate-limited');
        break;
      }
    }
    assert.ok(sentA >= 45 && sentA < 200, `node 0 allowed ${sentA}`);
    let sentB = 0;
    for (; sentB < 50; sentB++) if (!(await request<Ack>(onB, 'unshare')).ok) break;
    assert.ok(sentB < 10, `node 1 allowed ${sentB} more events of an address over budget`);
    // Another address is not concerned.
    const other = await connect(b, { extraHeaders: from('198.51.100.22') });
    assert.equal((await request<Ack>(other, 'unshare')).ok, true);
  });

  it('Redis frozen (SIGSTOP) under traffic: nothing hangs, connections are still admitted; thawed (SIGCONT): it serves again', async () => {
    cluster = await startCluster(2);
    const [a, b] = cluster.urls as [string, string];
    const sharer = await connect(a);
    assert.equal((await request<Ack>(sharer, 'share', 'frozen')).ok, true);
    const joiner = await connect(b);
    await exchange(joiner, sharer, 'frozen', 'before');

    const pid = cluster.redis.pid;
    process.kill(pid, 'SIGSTOP');
    const frozenAt = Date.now();
    try {
      // The connection budget lives in Redis; it must fail open, not hold the handshake.
      const late = await within(4000, 'a connection while Redis is frozen', connect(b));
      const codes = new Set(['internal', 'sharer-gone', 'no-sharer']);
      const launch = await within(4000, 'a launch while Redis is frozen', request<Ack>(joiner, 'launch', 'frozen', 'before', 'again'));
      assert.ok(launch.ok || codes.has(launch.error!.code), JSON.stringify(launch));
      const share = await within(4000, 'a share while Redis is frozen', request<Ack>(late, 'share', 'during'));
      assert.ok(share.ok || share.error!.code === 'internal', JSON.stringify(share));
      for (const url of cluster.urls) await within(4000, '/healthz while Redis is frozen', fetch(`${url}/healthz`).then((r) => r.arrayBuffer()));
      // Frozen longer than the node timeout: on thawing, heartbeats look stale.
      const left = Number(TEST_CLUSTER_SETTINGS.nodeTimeout) + 1000 - (Date.now() - frozenAt);
      if (left > 0) await new Promise((r) => setTimeout(r, left));
    } finally {
      process.kill(pid, 'SIGCONT');
    }

    // Fresh clients on both nodes complete exchanges again...
    await eventually(
      async () => {
        const s = await connect(a);
        const j = await connect(b);
        try {
          if (!(await request<Ack>(s, 'share', 'thawed')).ok) return false;
          await exchange(j, s, 'thawed', 'after');
          return true;
        } catch {
          return false;
        } finally {
          s.disconnect();
          j.disconnect();
        }
      },
      20_000,
      'a fresh exchange across nodes after SIGCONT',
    );
    // ...and the sharer from before the freeze is reachable under its name.
    await eventually(
      async () => {
        const j = await connect(b);
        try {
          await exchange(j, sharer, 'frozen', `after-${Date.now()}`);
          return true;
        } catch {
          return false;
        } finally {
          j.disconnect();
        }
      },
      20_000,
      'the old share to work after SIGCONT',
    );
    disconnectAll();
    await allClear(cluster);
  });

  for (const restarted of [1, 0] as const) {
    const role = restarted === 1 ? "joiners'" : "sharers'";
    it(`the ${role} node restarted during a burst of joins: every joiner gets its own answer, nothing is left`, async (t) => {
      const JOINERS = 40;
      cluster = await startCluster(2);
      const urls = [...cluster.urls];
      const reconnecting = { reconnection: true, reconnectionDelay: 100, reconnectionDelayMax: 400, timeout: 2000 };
      // Sharers (node 0) share again whenever they (re)connect and answer every offer.
      const sharers: TestSocket[] = [];
      for (let i = 0; i < 3; i++) {
        const s = await connect(urls[0]!, reconnecting);
        const share = (): void => void request(s, 'share', 'burst').catch(() => undefined);
        share();
        s.io.on('reconnect', share);
        s.on('launchResponse', (uid: string) => s.emit('answer', 'burst', uid, `answer:${uid}`));
        sharers.push(s);
      }
      await eventually(async () => (await health(cluster!))[0]!.shares === 3, 5000, 'three shares');

      // Joiners (node 1) launch until their own answer arrives.
      const answers = new Map<string, unknown[]>();
      const errors: string[] = [];
      const done = new Set<string>();
      let cut = 0;
      const joiners: Promise<void>[] = [];
      for (let i = 0; i < JOINERS; i++) {
        const uid = `j${i}`;
        answers.set(uid, []);
        joiners.push(
          (async () => {
            await new Promise((r) => setTimeout(r, i * 25));
            const j = await connect(urls[1]!, reconnecting);
            j.on('answerResponse', (message: unknown) => {
              answers.get(uid)!.push(message);
              done.add(uid);
            });
            j.on('signalingError', (body: SignalingErrorBody) => errors.push(body.code));
            j.on('disconnect', () => cut++);
            const deadline = Date.now() + 30_000;
            while (!done.has(uid) && Date.now() < deadline) {
              if (j.connected) await request<Ack>(j, 'launch', 'burst', uid, `offer:${uid}`).catch(() => undefined);
              await new Promise((r) => setTimeout(r, 300));
            }
          })(),
        );
      }
      // Mid-burst: SIGTERM the node, and start a new process on the same port.
      await new Promise((r) => setTimeout(r, (JOINERS * 25) / 2));
      const old = cluster.nodes[restarted]!;
      assert.equal(await old.stop(), 0, 'graceful exit');
      cluster.nodes[restarted] = await startNode(restarted, {
        ...TEST_CLUSTER_SETTINGS,
        redisUrl: cluster.redis.url,
        redisPrefix: cluster.prefix,
        port: old.port,
      });
      await Promise.all(joiners);

      const tally = new Map<string, number>();
      for (const code of errors) tally.set(code, (tally.get(code) ?? 0) + 1);
      t.diagnostic(`joiners cut by the restart: ${cut}; signalingErrors: ${JSON.stringify(Object.fromEntries(tally))}`);
      // The restart must have hit the burst, or this test proves nothing.
      assert.ok(restarted === 1 ? cut > 0 : (tally.get('sharer-gone') ?? 0) + (tally.get('no-sharer') ?? 0) > 0, 'the restart hit the burst');
      const missing = [...answers].filter(([, got]) => got.length === 0).map(([uid]) => uid);
      assert.deepEqual(missing, [], 'every joiner got an answer');
      for (const [uid, got] of answers) {
        for (const message of got) assert.equal(message, `answer:${uid}`, `${uid} received another joiner's answer`);
      }
      assert.ok(
        errors.every((code) => ['sharer-gone', 'no-sharer', 'internal', 'uid-taken'].includes(code)),
        `unexpected codes: ${[...new Set(errors)].join(', ')}`,
      );
      for (const node of cluster.nodes) assert.equal(await Promise.race([node.exited.then(() => 'exited'), Promise.resolve('alive')]), 'alive');
      disconnectAll();
      await allClear(cluster);
    });
  }
});
