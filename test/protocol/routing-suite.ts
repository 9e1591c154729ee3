/**
 * Routing: random over several sharers of one name, sticky for a joiner's
 * later launches, ordered both ways, and many joiners on one link.
 * Black-box: runs against any Topology.
 * @module
 */
import assert from 'node:assert/strict';
import { after, afterEach, before, describe, it } from 'node:test';
import type { Topology, TopologyFactory } from '../support/topology.js';
import { collect, connect, disconnectAll, eventually, request, waitFor, type TestSocket } from '../support/util.js';
import { send } from './probe.js';

export function routingSuite(label: string, makeTopology: TopologyFactory): void {
  describe(`routing (${label})`, () => {
    let topology: Topology;
    before(async () => {
      topology = await makeTopology();
    });
    afterEach(() => disconnectAll());
    after(() => topology.close());

    const sharers = async (name: string, n: number): Promise<TestSocket[]> => {
      const list: TestSocket[] = [];
      for (let i = 0; i < n; i++) {
        const s = await connect(topology.url('sharer'));
        assert.equal((await request<{ ok: boolean }>(s, 'share', name)).ok, true);
        list.push(s);
      }
      return list;
    };

    it('spreads first launches over every sharer of a name at random', async () => {
      const group = await sharers('rt-random', 3);
      const seen = group.map((s) => collect<[string, unknown]>(s, 'launchResponse'));
      const joiners = await Promise.all(Array.from({ length: 6 }, () => connect(topology.url('joiner'))));
      const acks = await Promise.all(
        Array.from({ length: 60 }, (_, i) => request<{ ok: boolean }>(joiners[i % joiners.length]!, 'launch', 'rt-random', `j${i}`, `offer-${i}`)),
      );
      assert.ok(acks.every((a) => a.ok));
      await eventually(() => seen.reduce((n, s) => n + s.length, 0) === 60, 5000, '60 launches delivered');
      // Each of three gets none with probability (2/3)^60, about 3e-11.
      for (const [i, s] of seen.entries()) assert.ok(s.length > 0, `sharer ${i} got no joiner`);
      // Every joiner went to exactly one sharer, with its own offer.
      const uids = seen.flat().map(([uid, message]) => {
        assert.equal(message, `offer-${uid.slice(1)}`);
        return uid;
      });
      assert.equal(new Set(uids).size, 60);
    });

    it('sends every later launch of a joiner to the same sharer, in order (trickled candidates)', async () => {
      const group = await sharers('rt-sticky', 3);
      const seen = group.map((s) => collect<[string, unknown]>(s, 'launchResponse'));
      const joiner = await connect(topology.url('joiner'));
      // Fired without waiting, as a browser trickles ICE candidates.
      for (let i = 0; i < 49; i++) joiner.emit('launch', 'rt-sticky', 'trickler', { seq: i });
      assert.deepEqual(await request(joiner, 'launch', 'rt-sticky', 'trickler', { seq: 49 }), { ok: true, joinerUID: 'trickler' });
      await eventually(() => seen.some((s) => s.length === 50), 5000, 'all 50 launches at one sharer');
      const target = seen.findIndex((s) => s.length === 50);
      assert.deepEqual(
        seen[target],
        Array.from({ length: 50 }, (_, i) => ['trickler', { seq: i }]),
      );
      assert.equal(seen.reduce((n, s) => n + s.length, 0), 50, 'launches went to more than one sharer');

      // The same for the 2-argument form, whose uid is the socket id.
      const short = await connect(topology.url('joiner'));
      for (let i = 0; i < 50; i++) send(short, 'launch', 'rt-sticky', `c${i}`);
      await eventually(() => seen.reduce((n, s) => n + s.filter(([uid]) => uid === short.id).length, 0) === 50, 5000, '50 short launches');
      const holders = seen.filter((s) => s.some(([uid]) => uid === short.id));
      assert.equal(holders.length, 1, 'short-form launches went to more than one sharer');
      assert.deepEqual(
        holders[0]!.filter(([uid]) => uid === short.id).map(([, m]) => m),
        Array.from({ length: 50 }, (_, i) => `c${i}`),
      );
    });

    it('delivers repeated answers to the joiner in order, in both forms', async () => {
      const [sharer] = await sharers('rt-answers', 1);
      const joiner = await connect(topology.url('joiner'));
      const launched = waitFor<[string, unknown]>(sharer!, 'launchResponse');
      send(joiner, 'launch', 'rt-answers', 'offer');
      const [uid] = await launched;
      const answers = collect<[unknown]>(joiner, 'answerResponse');
      for (let i = 0; i < 50; i++) {
        if (i % 2 === 0) sharer!.emit('answer', 'rt-answers', uid, { seq: i });
        else send(sharer!, 'answer', uid, { seq: i });
      }
      await eventually(() => answers.length === 50, 5000, '50 answers');
      assert.deepEqual(
        answers,
        Array.from({ length: 50 }, (_, i) => [{ seq: i }]),
      );
    });

    it('keeps interleaved exchanges of several joiners apart and in order', async () => {
      const group = await sharers('rt-interleave', 2);
      const seen = group.map((s) => collect<[string, { seq: number }]>(s, 'launchResponse'));
      const joiners = await Promise.all(Array.from({ length: 5 }, () => connect(topology.url('joiner'))));
      for (let i = 0; i < 20; i++) {
        for (const [j, joiner] of joiners.entries()) joiner.emit('launch', 'rt-interleave', `k${j}`, { seq: i });
      }
      await eventually(() => seen.reduce((n, s) => n + s.length, 0) === 100, 5000, '100 launches');
      for (let j = 0; j < joiners.length; j++) {
        const holders = seen.filter((s) => s.some(([uid]) => uid === `k${j}`));
        assert.equal(holders.length, 1, `joiner k${j} reached ${holders.length} sharers`);
        assert.deepEqual(
          holders[0]!.filter(([uid]) => uid === `k${j}`).map(([, m]) => m.seq),
          Array.from({ length: 20 }, (_, i) => i),
        );
      }
      // Answers, interleaved too, each reach only their own joiner, in order.
      const got = joiners.map((j) => collect<[{ to: number; seq: number }]>(j, 'answerResponse'));
      for (let i = 0; i < 10; i++) {
        for (let j = 0; j < joiners.length; j++) {
          const sharer = group[seen.findIndex((s) => s.some(([uid]) => uid === `k${j}`))]!;
          sharer.emit('answer', 'rt-interleave', `k${j}`, { to: j, seq: i });
        }
      }
      await eventually(() => got.every((g) => g.length === 10), 5000, 'answers to 5 joiners');
      for (const [j, g] of got.entries()) {
        assert.deepEqual(
          g.map(([m]) => m),
          Array.from({ length: 10 }, (_, i) => ({ to: j, seq: i })),
        );
      }
    });

    it('serves many joiners on one link, each answer reaching its own joiner', async () => {
      const [sharer] = await sharers('rt-many', 1);
      const offers = collect<[string, unknown]>(sharer!, 'launchResponse');
      // The sharer answers each offer as it comes, half in each form.
      sharer!.on('launchResponse', (uid, message) => {
        if (offers.length % 2 === 0) sharer!.emit('answer', 'rt-many', uid, { for: message });
        else send(sharer!, 'answer', uid, { for: message });
      });
      const joiners = await Promise.all(Array.from({ length: 40 }, () => connect(topology.url('joiner'))));
      const answered = joiners.map((j, i) => {
        const got = waitFor<[unknown]>(j, 'answerResponse', 10_000);
        if (i % 2 === 0) send(j, 'launch', 'rt-many', `offer-${i}`);
        else j.emit('launch', 'rt-many', `m${i}`, `offer-${i}`);
        return got;
      });
      const answers = await Promise.all(answered);
      for (const [i, [answer]] of answers.entries()) assert.deepEqual(answer, { for: `offer-${i}` });
      assert.equal(offers.length, 40);
      assert.equal(new Set(offers.map(([uid]) => uid)).size, 40);
    });
  });
}
