/**
 * The life of a share: expiry, maxJoins, unshare, and what a disconnect
 * leaves behind (nothing). Black-box: runs against any Topology.
 * @module
 */
import assert from 'node:assert/strict';
import { after, afterEach, before, describe, it } from 'node:test';
import type { ShareGranted, SignalingErrorBody } from '../../src/protocol/index.js';
import type { Topology, TopologyFactory } from '../support/topology.js';
import { collect, connect, disconnectAll, eventually, request, waitFor, type TestSocket } from '../support/util.js';
import { counts, expectFailure, handshake, health, send } from './probe.js';

export function lifecycleSuite(label: string, makeTopology: TopologyFactory): void {
  describe(`share lifecycle (${label})`, () => {
    let topology: Topology;
    before(async () => {
      topology = await makeTopology();
    });
    afterEach(() => disconnectAll());
    after(() => topology.close());

    /** Connects a sharer of `name` (with options), or adds `name` to `socket`. */
    const sharer = async (name: string, options?: object, socket?: TestSocket): Promise<TestSocket> => {
      const s = socket ?? (await connect(topology.url('sharer')));
      const args = options ? [name, options] : [name];
      assert.equal((await request<ShareGranted>(s, 'share', ...args)).ok, true);
      return s;
    };

    /** Launches and waits until one of `sharers` receives it; returns that sharer's index. */
    const launchTo = async (joiner: TestSocket, sharers: TestSocket[], name: string, uid: string, message: unknown): Promise<number> => {
      const arrivals = sharers.map((s, i) => waitFor<[string, unknown]>(s, 'launchResponse', 5000).then((args) => ({ i, args })));
      assert.deepEqual(await request(joiner, 'launch', name, uid, message), { ok: true, joinerUID: uid });
      const { i, args } = await Promise.race(arrivals);
      assert.deepEqual(args, [uid, message]);
      // The losers' waits must not fail the test later.
      for (const a of arrivals) a.catch(() => undefined);
      return i;
    };

    describe('expiry', () => {
      it('sends shareExpired, after which launches get no-sharer', async () => {
        const s = await sharer('lc-expire', { ttl: 300 });
        const joiner = await connect(topology.url('joiner'));
        assert.deepEqual(await waitFor(s, 'shareExpired'), ['lc-expire']);
        await expectFailure(joiner, 'no-sharer', 'launch', 'lc-expire', 'late', 'offer');
        assert.equal(s.connected, true);
        // The sharer may share the name again.
        await sharer('lc-expire', undefined, s);
        await launchTo(joiner, [s], 'lc-expire', 'again', 'offer');
      });

      it('lets a joiner routed before expiry finish its exchange', async () => {
        const s = await sharer('lc-expire-finish', { ttl: 400 });
        const joiner = await connect(topology.url('joiner'));
        await launchTo(joiner, [s], 'lc-expire-finish', 'early', 'offer');
        await waitFor(s, 'shareExpired');
        await launchTo(joiner, [s], 'lc-expire-finish', 'early', 'candidate');
        const answered = waitFor<[unknown]>(joiner, 'answerResponse');
        assert.deepEqual(await request(s, 'answer', 'lc-expire-finish', 'early', 'answer'), { ok: true });
        assert.deepEqual(await answered, ['answer']);
        await expectFailure(joiner, 'no-sharer', 'launch', 'lc-expire-finish', 'new-one', 'offer');
      });

      it('routes to the sharers still live when one of several expires', async () => {
        const short = await sharer('lc-expire-some', { ttl: 300 });
        const long = await sharer('lc-expire-some');
        await waitFor(short, 'shareExpired');
        const joiner = await connect(topology.url('joiner'));
        for (let i = 0; i < 10; i++) assert.equal(await launchTo(joiner, [short, long], 'lc-expire-some', `x${i}`, 'offer'), 1);
      });

      it('renewing a share before it expires keeps it alive', async () => {
        const s = await sharer('lc-renew', { ttl: 300 });
        const expired = collect(s, 'shareExpired');
        await sharer('lc-renew', { ttl: 60_000 }, s);
        const other = await sharer('lc-renew-marker', { ttl: 600 });
        await waitFor(other, 'shareExpired');
        assert.deepEqual(expired, []);
        const joiner = await connect(topology.url('joiner'));
        await launchTo(joiner, [s], 'lc-renew', 'u', 'offer');
      });
    });

    describe('maxJoins', () => {
      it('admits maxJoins joiners, refuses the next with share-full, and keeps serving those admitted', async () => {
        const s = await sharer('lc-max', { maxJoins: 2 });
        const joiner = await connect(topology.url('joiner'));
        await launchTo(joiner, [s], 'lc-max', 'one', 'offer');
        await launchTo(joiner, [s], 'lc-max', 'two', 'offer');
        const body = await expectFailure(joiner, 'share-full', 'launch', 'lc-max', 'three', 'offer');
        assert.equal(body.name, 'lc-max');
        // Admitted joiners carry on.
        await launchTo(joiner, [s], 'lc-max', 'one', 'candidate');
        // A second sharer without a limit takes the overflow.
        const more = await sharer('lc-max');
        assert.equal(await launchTo(joiner, [s, more], 'lc-max', 'three', 'offer'), 1);
      });

      it('counts joins per share, and a joiner that left does not free its place', async () => {
        const a = await sharer('lc-max-each', { maxJoins: 1 });
        const b = await sharer('lc-max-each', { maxJoins: 1 });
        const first = await connect(topology.url('joiner'));
        const second = await connect(topology.url('joiner'));
        const hit = [await launchTo(first, [a, b], 'lc-max-each', 'p', 'offer'), await launchTo(second, [a, b], 'lc-max-each', 'q', 'offer')];
        assert.deepEqual(hit.sort(), [0, 1]);
        const third = await connect(topology.url('joiner'));
        await expectFailure(third, 'share-full', 'launch', 'lc-max-each', 'r', 'offer');
        first.disconnect();
        await eventually(async () => (await health(topology)).reduce((n, h) => n + h.routes, 0) === 1, 5000, 'route of the leaver removed');
        await expectFailure(third, 'share-full', 'launch', 'lc-max-each', 'r', 'offer');
      });
    });

    describe('unshare', () => {
      it('stops new joiners of one name and keeps the socket\'s other names', async () => {
        const s = await sharer('lc-un-a');
        await sharer('lc-un-b', undefined, s);
        const joiner = await connect(topology.url('joiner'));
        assert.deepEqual(await request(s, 'unshare', 'lc-un-a'), { ok: true, names: ['lc-un-a'] });
        await expectFailure(joiner, 'no-sharer', 'launch', 'lc-un-a', 'u', 'offer');
        await launchTo(joiner, [s], 'lc-un-b', 'u', 'offer');
      });

      it('stops every name of the socket when given none, and only that socket\'s', async () => {
        const s = await sharer('lc-all-a');
        await sharer('lc-all-b', undefined, s);
        const other = await sharer('lc-all-b');
        const joiner = await connect(topology.url('joiner'));
        const done = await request<{ ok: true; names: string[] }>(s, 'unshare');
        assert.deepEqual(done.names.sort(), ['lc-all-a', 'lc-all-b']);
        await expectFailure(joiner, 'no-sharer', 'launch', 'lc-all-a', 'u', 'offer');
        for (let i = 0; i < 5; i++) assert.equal(await launchTo(joiner, [s, other], 'lc-all-b', `v${i}`, 'offer'), 1);
      });

      it('works without an ack', async () => {
        const s = await sharer('lc-un-noack');
        const joiner = await connect(topology.url('joiner'));
        s.emit('unshare', 'lc-un-noack');
        // A fresh uid per attempt: one routed before the unshare landed would
        // (rightly) keep its route and never see no-sharer.
        let attempt = 0;
        await eventually(
          async () =>
            (await request<{ ok: boolean; error?: { code: string } }>(joiner, 'launch', 'lc-un-noack', `w${attempt++}`, 'x')).error?.code === 'no-sharer',
          5000,
          'no-sharer after unshare',
        );
      });

      it('lets a joiner routed before unshare finish its exchange', async () => {
        const s = await sharer('lc-un-finish');
        const joiner = await connect(topology.url('joiner'));
        await launchTo(joiner, [s], 'lc-un-finish', 'routed', 'offer');
        await request(s, 'unshare', 'lc-un-finish');
        await launchTo(joiner, [s], 'lc-un-finish', 'routed', 'candidate');
        const answered = waitFor<[unknown]>(joiner, 'answerResponse');
        assert.deepEqual(await request(s, 'answer', 'lc-un-finish', 'routed', 'answer'), { ok: true });
        assert.deepEqual(await answered, ['answer']);
        const late = await connect(topology.url('joiner'));
        await expectFailure(late, 'no-sharer', 'launch', 'lc-un-finish', 'late', 'offer');
      });
    });

    describe('disconnect', () => {
      it('tells a routed joiner sharer-gone at once, and routes its next launch afresh', async () => {
        const group = [await sharer('lc-gone'), await sharer('lc-gone')];
        const joiner = await connect(topology.url('joiner'));
        const first = await launchTo(joiner, group, 'lc-gone', 'g', 'offer');
        const gone = waitFor<[SignalingErrorBody]>(joiner, 'signalingError');
        group[first]!.disconnect();
        const [body] = await gone;
        assert.equal(body.code, 'sharer-gone');
        assert.equal(body.event, 'launch');
        assert.equal(body.name, 'lc-gone');
        assert.equal(body.joinerUID, 'g');
        assert.equal(typeof body.message, 'string');
        assert.equal(joiner.connected, true);
        // Same uid, next launch: the remaining sharer gets it as a new joiner.
        assert.equal(await launchTo(joiner, group, 'lc-gone', 'g', 'offer-2'), 1 - first);
        const answered = waitFor<[unknown]>(joiner, 'answerResponse');
        await request(group[1 - first]!, 'answer', 'lc-gone', 'g', 'answer');
        assert.deepEqual(await answered, ['answer']);
      });

      it('tells every joiner of a departing sharer, in both forms, and only them', async () => {
        const group = [await sharer('lc-gone-many'), await sharer('lc-gone-many')];
        const joiners = await Promise.all(Array.from({ length: 6 }, () => connect(topology.url('joiner'))));
        const routedTo: number[] = [];
        for (const [i, j] of joiners.entries()) {
          const arrivals = group.map((s, k) => waitFor(s, 'launchResponse', 5000).then(() => k));
          if (i % 2 === 0) send(j, 'launch', 'lc-gone-many', 'offer');
          else j.emit('launch', 'lc-gone-many', `n${i}`, 'offer');
          routedTo.push(await Promise.race(arrivals));
          for (const a of arrivals) a.catch(() => undefined);
        }
        const errors = joiners.map((j) => collect<[SignalingErrorBody]>(j, 'signalingError'));
        // Leave with the sharer that has joiners (either has at least one of six, or one has all).
        const leaver = routedTo.includes(0) ? 0 : 1;
        group[leaver]!.disconnect();
        const expected = routedTo.map((r) => r === leaver);
        await eventually(() => errors.every((e, i) => e.length === (expected[i] ? 1 : 0)), 5000, 'sharer-gone to the leaver\'s joiners');
        for (const [i, e] of errors.entries()) {
          if (!expected[i]) continue;
          assert.equal(e[0]![0].code, 'sharer-gone');
          assert.equal(e[0]![0].joinerUID, i % 2 === 0 ? joiners[i]!.id : `n${i}`);
        }
      });

      it('forgets a joiner that disconnects: answers get unknown-joiner and its uid is free again', async () => {
        const s = await sharer('lc-joiner-gone');
        const joiner = await connect(topology.url('joiner'));
        await launchTo(joiner, [s], 'lc-joiner-gone', 'leaving', 'offer');
        joiner.disconnect();
        await eventually(
          async () => (await request<{ ok: boolean; error?: { code: string } }>(s, 'answer', 'lc-joiner-gone', 'leaving', 'a')).error?.code === 'unknown-joiner',
          5000,
          'unknown-joiner after the joiner left',
        );
        const next = await connect(topology.url('joiner'));
        await launchTo(next, [s], 'lc-joiner-gone', 'leaving', 'offer-again');
      });

      it('ends the shares of a disconnected sharer', async () => {
        const s = await sharer('lc-sharer-left');
        const joiner = await connect(topology.url('joiner'));
        s.disconnect();
        await eventually(
          async () => (await request<{ ok: boolean; error?: { code: string } }>(joiner, 'launch', 'lc-sharer-left', 'z', 'offer')).error?.code === 'no-sharer',
          5000,
          'no-sharer after the sharer left',
        );
      });
    });
  });

  describe(`nothing left behind (${label})`, () => {
    let topology: Topology;
    before(async () => {
      topology = await makeTopology();
    });
    afterEach(() => disconnectAll());
    after(() => topology.close());

    it('returns /healthz counts to their starting values after a long run of shares, joins and disconnects', async () => {
      const start = await counts(topology);
      for (let round = 0; round < 12; round++) {
        const name = round % 3 === 0 ? '__proto__' : `lb-${round}`;
        const group = [await connect(topology.url('sharer')), await connect(topology.url('sharer'))];
        for (const s of group) await request(s, 'share', name, round % 4 === 1 ? { ttl: 200 } : { maxJoins: 3 });
        await request(group[0]!, 'share', `${name}-extra`);
        const joiners = await Promise.all(Array.from({ length: 4 }, () => connect(topology.url('joiner'))));
        const received = group.map((s) => collect<[string, unknown]>(s, 'launchResponse'));
        // Answer every offer, so routes exist at both ends.
        for (const s of group) s.on('launchResponse', (uid) => s.emit('answer', name, uid, 'answer'));
        const answered = joiners.map((j) => waitFor(j, 'answerResponse', 5000).catch(() => 'none'));
        for (const [i, j] of joiners.entries()) {
          if (i % 2 === 0) send(j, 'launch', name, 'offer');
          else j.emit('launch', name, `u${i}`, 'offer');
          send(j, 'launch', name, i % 2 === 0 ? j.id : `u${i}`, 'candidate');
        }
        await Promise.all(answered);
        assert.ok(received.flat().length > 0);
        // The counts do move, so their return below means something.
        assert.notDeepEqual(await counts(topology), start);
        // Leave in a different order each round.
        switch (round % 4) {
          case 0:
            for (const s of group) s.disconnect();
            for (const j of joiners) j.disconnect();
            break;
          case 1:
            for (const j of joiners) j.disconnect();
            for (const s of group) s.disconnect();
            break;
          case 2:
            await request(group[0]!, 'unshare');
            joiners[0]!.disconnect();
            group[1]!.disconnect();
            group[0]!.disconnect();
            for (const j of joiners.slice(1)) j.disconnect();
            break;
          default:
            group[0]!.disconnect();
            joiners[1]!.disconnect();
            // Joiners whose sharer left launch again, to be routed afresh.
            for (const j of joiners.slice(2)) send(j, 'launch', name, 'retry');
            await request(group[1]!, 'unshare', name);
            for (const j of joiners) j.disconnect();
            group[1]!.disconnect();
        }
      }
      await eventually(async () => JSON.stringify(await counts(topology)) === JSON.stringify(start), 10_000, 'counts back to the start').catch(
        async (error: unknown) => {
          assert.deepEqual(await counts(topology), start, String(error));
        },
      );
      // And the server still works.
      await handshake(topology, 'lb-after', connect);
      await eventually(async () => JSON.stringify(await counts(topology)) === JSON.stringify(start), 10_000, 'counts back after the handshake');
    });
  });
}
