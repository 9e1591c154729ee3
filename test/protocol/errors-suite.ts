/**
 * Every error code a client can provoke, each with its ack and its
 * signalingError, and the proof that nobody else is disturbed. `internal`
 * cannot be provoked from outside: test/internal-error.test.ts covers it.
 * Black-box: runs against any Topology.
 * @module
 */
import assert from 'node:assert/strict';
import { after, afterEach, before, describe, it } from 'node:test';
import { errorCodes, type AckFailure, type ErrorCode, type ShareGranted, type SignalingErrorBody } from '../../src/protocol/index.js';
import type { Topology, TopologyFactory } from '../support/topology.js';
import { collect, connect, disconnectAll, eventually, request, sleep, waitFor, type TestSocket } from '../support/util.js';
import { expectFailure as expectFailureOf, handshake, send, total } from './probe.js';

export function errorsSuite(label: string, makeTopology: TopologyFactory): void {
  // Which codes the tests below provoked; the last test checks none is missing.
  const provoked = new Set<ErrorCode>();
  const expectFailure = async (socket: TestSocket, code: ErrorCode, event: string, ...args: unknown[]): Promise<SignalingErrorBody> => {
    const body = await expectFailureOf(socket, code, event, ...args);
    provoked.add(code);
    return body;
  };

  describe(`error codes (${label})`, () => {
    let topology: Topology;
    before(async () => {
      topology = await makeTopology();
    });
    afterEach(() => disconnectAll());
    after(() => topology.close());

    const sharer = async (name: string, options?: object): Promise<TestSocket> => {
      const s = await connect(topology.url('sharer'));
      assert.equal((await request<ShareGranted>(s, 'share', ...(options ? [name, options] : [name]))).ok, true);
      return s;
    };

    it('bad-request: ill-typed or missing arguments, for every event', async () => {
      const socket = await connect(topology.url('joiner'));
      await expectFailure(socket, 'bad-request', 'share', 42);
      await expectFailure(socket, 'bad-request', 'unshare', 42);
      await expectFailure(socket, 'bad-request', 'launch', 'er-bad', 42, 'offer');
      await expectFailure(socket, 'bad-request', 'launch');
      await expectFailure(socket, 'bad-request', 'answer', 42, 'answer');
      await expectFailure(socket, 'bad-request', 'answer', 'er-bad');
      assert.equal(socket.connected, true);
    });

    it('too-large: a message over the size limit, in launch and answer', async () => {
      const s = await sharer('er-large');
      const joiner = await connect(topology.url('joiner'));
      const big = 'x'.repeat(64 * 1024 + 1);
      const body = await expectFailure(joiner, 'too-large', 'launch', 'er-large', 'u', big);
      assert.equal(body.name, 'er-large');
      assert.equal(body.joinerUID, 'u');
      await expectFailure(joiner, 'too-large', 'launch', 'er-large', big);
      await expectFailure(s, 'too-large', 'answer', 'er-large', 'u', big);
      await expectFailure(s, 'too-large', 'answer', 'u', big);
      // Exactly at the limit is fine.
      const launched = waitFor<[string, string]>(s, 'launchResponse');
      assert.deepEqual(await request(joiner, 'launch', 'er-large', 'u', 'y'.repeat(64 * 1024)), { ok: true, joinerUID: 'u' });
      assert.equal((await launched)[1].length, 64 * 1024);
    });

    it('no-sharer: the joiner stays connected and can retry successfully', async () => {
      const joiner = await connect(topology.url('joiner'));
      const body = await expectFailure(joiner, 'no-sharer', 'launch', 'er-later', 'early-bird', 'offer');
      assert.equal(body.name, 'er-later');
      await expectFailure(joiner, 'no-sharer', 'launch', 'er-later', 'offer');
      assert.equal(joiner.connected, true);
      const s = await sharer('er-later');
      const launched = waitFor(s, 'launchResponse');
      assert.deepEqual(await request(joiner, 'launch', 'er-later', 'early-bird', 'offer'), { ok: true, joinerUID: 'early-bird' });
      assert.deepEqual(await launched, ['early-bird', 'offer']);
      const answered = waitFor(joiner, 'answerResponse');
      await request(s, 'answer', 'er-later', 'early-bird', 'answer');
      assert.deepEqual(await answered, ['answer']);
    });

    it('uid-taken: another socket cannot use a joinerUID already routed in the share', async () => {
      const s = await sharer('er-uid');
      const owner = await connect(topology.url('joiner'));
      const thief = await connect(topology.url('joiner'));
      const launched = collect(s, 'launchResponse');
      await request(owner, 'launch', 'er-uid', 'mine', 'offer');
      const body = await expectFailure(thief, 'uid-taken', 'launch', 'er-uid', 'mine', 'forged');
      assert.equal(body.joinerUID, 'mine');
      // The owner is unaffected, and nothing of the thief reached the sharer.
      // Wait for the candidate itself: in a cluster it reaches the sharer by
      // another node than the answer takes back, so the answer may come first.
      await request(owner, 'launch', 'er-uid', 'mine', 'candidate');
      await eventually(() => launched.length >= 2, 3000, "the owner's second launch at the sharer");
      const answered = waitFor(owner, 'answerResponse');
      await request(s, 'answer', 'er-uid', 'mine', 'answer');
      assert.deepEqual(await answered, ['answer']);
      assert.deepEqual(launched, [
        ['mine', 'offer'],
        ['mine', 'candidate'],
      ]);
      // The same uid under another name is another joiner.
      await sharer('er-uid-other');
      assert.deepEqual(await request(thief, 'launch', 'er-uid-other', 'mine', 'offer'), { ok: true, joinerUID: 'mine' });
    });

    it('not-sharer: only the sharer the joiner was routed to may answer it', async () => {
      const group = [await sharer('er-not'), await sharer('er-not')];
      const joiner = await connect(topology.url('joiner'));
      const arrivals = group.map((s, i) => waitFor(s, 'launchResponse', 5000).then(() => i));
      await request(joiner, 'launch', 'er-not', 'j', 'offer');
      const routed = await Promise.race(arrivals);
      for (const a of arrivals) a.catch(() => undefined);
      const other = group[1 - routed]!;
      const answers = collect(joiner, 'answerResponse');
      await expectFailure(other, 'not-sharer', 'answer', 'er-not', 'j', 'hijack');
      // A socket sharing nothing, naming the share, is not its sharer either.
      const stranger = await connect(topology.url('sharer'));
      await expectFailure(stranger, 'not-sharer', 'answer', 'er-not', 'j', 'hijack');
      const answered = waitFor(joiner, 'answerResponse');
      await request(group[routed]!, 'answer', 'er-not', 'j', 'real');
      assert.deepEqual(await answered, ['real']);
      assert.deepEqual(answers, [['real']]);
    });

    it('unknown-joiner: an answer to a joiner nobody routed here', async () => {
      const s = await sharer('er-unknown');
      const body = await expectFailure(s, 'unknown-joiner', 'answer', 'er-unknown', 'ghost', 'answer');
      assert.equal(body.name, 'er-unknown');
      assert.equal(body.joinerUID, 'ghost');
      await expectFailure(s, 'unknown-joiner', 'answer', 'ghost', 'answer');
      const idle = await connect(topology.url('sharer'));
      await expectFailure(idle, 'unknown-joiner', 'answer', 'ghost', 'answer');
    });

    it('share-full: every sharer admitted its maxJoins', async () => {
      await sharer('er-full', { maxJoins: 1 });
      const joiner = await connect(topology.url('joiner'));
      assert.deepEqual(await request(joiner, 'launch', 'er-full', 'first', 'offer'), { ok: true, joinerUID: 'first' });
      const body = await expectFailure(joiner, 'share-full', 'launch', 'er-full', 'second', 'offer');
      assert.equal(body.name, 'er-full');
    });

    it('sharer-gone: the sharer a joiner was routed to disconnected', async () => {
      const s = await sharer('er-gone');
      const joiner = await connect(topology.url('joiner'));
      const launched = waitFor(s, 'launchResponse');
      await request(joiner, 'launch', 'er-gone', 'offer');
      await launched;
      const gone = waitFor<[SignalingErrorBody]>(joiner, 'signalingError');
      s.disconnect();
      const [body] = await gone;
      assert.deepEqual(Object.keys(body).sort(), ['code', 'event', 'joinerUID', 'message', 'name']);
      assert.equal(body.code, 'sharer-gone');
      assert.equal(body.event, 'launch');
      assert.equal(body.joinerUID, joiner.id);
      provoked.add(body.code);
      // Nobody shares the name now.
      await expectFailure(joiner, 'no-sharer', 'launch', 'er-gone', 'offer');
    });

    it('keeps serving everyone after a run of errors', async () => {
      await handshake(topology, 'er-after', connect);
    });
  });

  describe(`share limit per socket (${label})`, () => {
    let topology: Topology;
    before(async () => {
      topology = await makeTopology({ maxSharesPerSocket: 2 });
    });
    afterEach(() => disconnectAll());
    after(() => topology.close());

    it('refuses a name past the per-socket limit with bad-request; renewing and other sockets are fine', async () => {
      const s = await connect(topology.url('sharer'));
      await request(s, 'share', 'lim-a');
      await request(s, 'share', 'lim-b');
      const body = await expectFailure(s, 'bad-request', 'share', 'lim-c');
      assert.match(body.message, /2/);
      await expectFailure(s, 'bad-request', 'share');
      assert.equal((await request<ShareGranted>(s, 'share', 'lim-a', { ttl: 9000 })).ttl, 9000);
      await request(s, 'unshare', 'lim-b');
      assert.equal((await request<ShareGranted>(s, 'share', 'lim-c')).ok, true);
      const other = await connect(topology.url('sharer'));
      assert.equal((await request<ShareGranted>(other, 'share', 'lim-d')).ok, true);
    });
  });

  describe(`rate limit (${label})`, () => {
    let topology: Topology;
    before(async () => {
      topology = await makeTopology({ rateLimit: 20, rateBurst: 20 });
    });
    afterEach(() => disconnectAll());
    after(() => topology.close());

    it('refuses events past the burst with rate-limited, then serves the socket again once it slows down', async () => {
      const socket = await connect(topology.url('joiner'));
      const signals = collect<[SignalingErrorBody]>(socket, 'signalingError');
      const acks = await Promise.all(Array.from({ length: 30 }, () => request<{ ok: boolean } | AckFailure>(socket, 'unshare')));
      const refused = acks.filter((a): a is AckFailure => !a.ok);
      // 20 at once; a slow machine may refill a token or two meanwhile.
      assert.ok(refused.length >= 5 && refused.length <= 10, `${refused.length} refused`);
      for (const r of refused) assert.equal(r.error.code, 'rate-limited');
      assert.ok(acks.slice(0, 20).every((a) => a.ok), 'the burst itself was refused');
      assert.equal(signals.length, refused.length);
      for (const [body] of signals) {
        assert.equal(body.code, 'rate-limited');
        assert.equal(body.event, 'unshare');
      }
      provoked.add('rate-limited');
      assert.equal(socket.connected, true, 'a short burst is not a flood');
      // The bucket refills at 20 a second; time is the point here, so sleep.
      await sleep(300);
      assert.deepEqual(await request(socket, 'unshare'), { ok: true, names: [] });
    });

    it('disconnects a socket that keeps flooding, ends its shares, and serves others throughout', async () => {
      const flooder = await connect(topology.url('sharer'));
      await request(flooder, 'share', 'rl-flooder');
      const signals = collect<[SignalingErrorBody]>(flooder, 'signalingError');
      const dropped = waitFor<[string]>(flooder, 'disconnect', 10_000);
      const others = handshake(topology, 'rl-others', connect);
      for (let i = 0; i < 300; i++) send(flooder, 'launch', 'rl-flooder', `u${i}`, 'spam');
      assert.equal((await dropped)[0], 'io server disconnect');
      assert.ok(signals.some(([b]) => b.code === 'rate-limited'));
      assert.ok((await total(topology, 'sigserve_errors_total', { code: 'rate-limited' })) > 0);
      await others;
      // Its share went with it.
      const joiner = await connect(topology.url('joiner'));
      await expectFailure(joiner, 'no-sharer', 'launch', 'rl-flooder', 'after', 'offer');
      await handshake(topology, 'rl-after', connect);
    });
  });

  describe(`error coverage (${label})`, () => {
    it('provoked every code of the seed protocol but internal', () => {
      // The codes of the seed protocol; later features add their own codes and tests.
      const seed: ErrorCode[] = ['bad-request', 'too-large', 'no-sharer', 'uid-taken', 'not-sharer', 'unknown-joiner', 'share-full', 'sharer-gone', 'rate-limited'];
      for (const code of seed) assert.ok(errorCodes.includes(code), `${code} is no longer a code`);
      assert.deepEqual(
        seed.filter((c) => !provoked.has(c)),
        [],
      );
    });
  });
}
