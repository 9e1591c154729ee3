/**
 * Every client event in every argument form, and the shapes of what comes
 * back: acks ({ ok: true, ... } / { ok: false, error }), signalingError,
 * launchResponse, answerResponse, shareExpired. Black-box: runs against any
 * Topology.
 * @module
 */
import assert from 'node:assert/strict';
import { after, afterEach, before, describe, it } from 'node:test';
import type { ShareGranted, SignalingErrorBody } from '../../src/protocol/index.js';
import type { Topology, TopologyFactory } from '../support/topology.js';
import { collect, connect, disconnectAll, eventually, request, waitFor } from '../support/util.js';
import { expectFailure, send } from './probe.js';

/** A minted name: base64url, at least 128 bits (22 characters). */
const MINTED = /^[A-Za-z0-9_-]{22,}$/;

export function eventsSuite(label: string, makeTopology: TopologyFactory): void {
  describe(`events and argument forms (${label})`, () => {
    let topology: Topology;
    before(async () => {
      topology = await makeTopology();
    });
    afterEach(() => disconnectAll());
    after(() => topology.close());

    it('acks share(name) with the name, the default ttl and the expiry time', async () => {
      const sharer = await connect(topology.url('sharer'));
      const before = Date.now();
      const granted = await request<ShareGranted>(sharer, 'share', 'ev-named');
      assert.deepEqual(Object.keys(granted).sort(), ['expiresAt', 'name', 'ok', 'ttl']);
      assert.equal(granted.ok, true);
      assert.equal(granted.name, 'ev-named');
      assert.equal(granted.ttl, 600_000);
      // Another process may hold the clock on a cluster: allow some skew.
      assert.ok(Math.abs(granted.expiresAt - (before + granted.ttl)) < 5_000, `expiresAt ${granted.expiresAt}`);
    });

    it('mints an unguessable URL-safe name, a new one each time, in every no-name form', async () => {
      const sharer = await connect(topology.url('sharer'));
      const other = await connect(topology.url('sharer'));
      const grants = [
        await request<ShareGranted>(sharer, 'share'),
        await request<ShareGranted>(sharer, 'share', null),
        await request<ShareGranted>(sharer, 'share', undefined, {}),
        await request<ShareGranted>(sharer, 'share', null, { ttl: 60_000 }),
        await request<ShareGranted>(other, 'share'),
        await request<ShareGranted>(other, 'share', null),
      ];
      const names = grants.map((g) => g.name);
      for (const grant of grants) {
        assert.equal(grant.ok, true);
        assert.match(grant.name, MINTED);
      }
      assert.equal(new Set(names).size, names.length, 'minted names repeat');
      assert.equal(grants[3]!.ttl, 60_000);
      // A minted name is a real share: a joiner holding it reaches the sharer.
      const joiner = await connect(topology.url('joiner'));
      const launched = waitFor<[string, unknown]>(other, 'launchResponse');
      assert.deepEqual(await request(joiner, 'launch', names[5], 'u', 'offer'), { ok: true, joinerUID: 'u' });
      assert.deepEqual(await launched, ['u', 'offer']);
    });

    it('accepts share(options) alone, minting a name', async () => {
      const sharer = await connect(topology.url('sharer'));
      const granted = await request<ShareGranted>(sharer, 'share', { ttl: 4321 });
      assert.equal(granted.ok, true);
      assert.match(granted.name, MINTED);
      assert.equal(granted.ttl, 4321);
      const withJoins = await request<ShareGranted>(sharer, 'share', { maxJoins: 1 });
      assert.match(withJoins.name, MINTED);
      assert.notEqual(withJoins.name, granted.name);
    });

    it('accepts share(name, options) and share without an ack', async () => {
      const sharer = await connect(topology.url('sharer'));
      const joiner = await connect(topology.url('joiner'));
      const granted = await request<ShareGranted>(sharer, 'share', 'ev-opts', { ttl: 30_000, maxJoins: 5 });
      assert.equal(granted.name, 'ev-opts');
      assert.equal(granted.ttl, 30_000);
      const launched = collect(sharer, 'launchResponse');
      sharer.emit('share', 'ev-noack');
      // No ack to wait for: the share shows by a launch getting through.
      await eventually(async () => (await request<{ ok: boolean }>(joiner, 'launch', 'ev-noack', 'u', 'hi')).ok, 5000, 'share without ack');
      await eventually(() => launched.length === 1, 3000, 'launchResponse');
      assert.deepEqual(launched, [['u', 'hi']]);
    });

    it('renews a share when the same socket shares the same name again', async () => {
      const sharer = await connect(topology.url('sharer'));
      const first = await request<ShareGranted>(sharer, 'share', 'ev-renew', { ttl: 10_000 });
      const second = await request<ShareGranted>(sharer, 'share', 'ev-renew', { ttl: 20_000 });
      assert.equal(second.name, 'ev-renew');
      assert.equal(second.ttl, 20_000);
      assert.ok(second.expiresAt > first.expiresAt);
      // Still one name: unshare of everything stops exactly it.
      assert.deepEqual(await request(sharer, 'unshare'), { ok: true, names: ['ev-renew'] });
    });

    it('acks launch in both forms with the joinerUID used', async () => {
      const sharer = await connect(topology.url('sharer'));
      const joiner = await connect(topology.url('joiner'));
      await request(sharer, 'share', 'ev-launch');
      const three = waitFor<[string, unknown]>(sharer, 'launchResponse');
      assert.deepEqual(await request(joiner, 'launch', 'ev-launch', 'three', { sdp: 'o3' }), { ok: true, joinerUID: 'three' });
      assert.deepEqual(await three, ['three', { sdp: 'o3' }]);
      const two = waitFor<[string, unknown]>(sharer, 'launchResponse');
      assert.deepEqual(await request(joiner, 'launch', 'ev-launch', { sdp: 'o2' }), { ok: true, joinerUID: joiner.id });
      assert.deepEqual(await two, [joiner.id, { sdp: 'o2' }]);
      // The 3-argument form naming the socket id is the same joiner as the 2-argument form.
      const same = waitFor<[string, unknown]>(sharer, 'launchResponse');
      assert.deepEqual(await request(joiner, 'launch', 'ev-launch', joiner.id, 'cand'), { ok: true, joinerUID: joiner.id });
      assert.deepEqual(await same, [joiner.id, 'cand']);
    });

    it('acks answer in both forms and relays it to the joiner', async () => {
      const sharer = await connect(topology.url('sharer'));
      const joiner = await connect(topology.url('joiner'));
      await request(sharer, 'share', 'ev-answer');
      const launched = waitFor<[string, unknown]>(sharer, 'launchResponse');
      joiner.emit('launch', 'ev-answer', 'j', 'offer');
      const [uid] = await launched;
      const three = waitFor<[unknown]>(joiner, 'answerResponse');
      assert.deepEqual(await request(sharer, 'answer', 'ev-answer', uid, 'a3'), { ok: true });
      assert.deepEqual(await three, ['a3']);
      const two = waitFor<[unknown]>(joiner, 'answerResponse');
      assert.deepEqual(await request(sharer, 'answer', uid, 'a2'), { ok: true });
      assert.deepEqual(await two, ['a2']);
      // And without an ack.
      const noAck = waitFor<[unknown]>(joiner, 'answerResponse');
      sharer.emit('answer', 'ev-answer', uid, 'a-noack');
      assert.deepEqual(await noAck, ['a-noack']);
    });

    it('answers the 2-argument answer to the joiner that launched last under that uid', async () => {
      const sharer = await connect(topology.url('sharer'));
      const first = await connect(topology.url('joiner'));
      const second = await connect(topology.url('joiner'));
      await request(sharer, 'share', 'ev-latest-a');
      await request(sharer, 'share', 'ev-latest-b');
      const one = waitFor(sharer, 'launchResponse');
      await request(first, 'launch', 'ev-latest-a', 'same-uid', 'from-first');
      await one;
      const two = waitFor(sharer, 'launchResponse');
      await request(second, 'launch', 'ev-latest-b', 'same-uid', 'from-second');
      await two;
      const toFirst = collect(first, 'answerResponse');
      const got = waitFor<[unknown]>(second, 'answerResponse');
      assert.deepEqual(await request(sharer, 'answer', 'same-uid', 'short-form'), { ok: true });
      assert.deepEqual(await got, ['short-form']);
      // The 3-argument form still reaches the first joiner, and only that came to it.
      await request(sharer, 'answer', 'ev-latest-a', 'same-uid', 'long-form');
      await eventually(() => toFirst.length > 0, 3000, 'answerResponse to the first joiner');
      assert.deepEqual(toFirst, [['long-form']]);
    });

    it('acks unshare with the names it stopped', async () => {
      const sharer = await connect(topology.url('sharer'));
      assert.deepEqual(await request(sharer, 'unshare'), { ok: true, names: [] });
      assert.deepEqual(await request(sharer, 'unshare', 'ev-never-shared'), { ok: true, names: [] });
      await request(sharer, 'share', 'ev-u1');
      await request(sharer, 'share', 'ev-u2');
      await request(sharer, 'share', 'ev-u3');
      assert.deepEqual(await request(sharer, 'unshare', 'ev-u2'), { ok: true, names: ['ev-u2'] });
      const all = await request<{ ok: true; names: string[] }>(sharer, 'unshare', null);
      assert.deepEqual(all.names.sort(), ['ev-u1', 'ev-u3']);
      assert.deepEqual(await request(sharer, 'unshare'), { ok: true, names: [] });
    });

    it('fails with both an ack { ok: false, error } and a signalingError { code, message, event, ... }', async () => {
      const joiner = await connect(topology.url('joiner'));
      const body = await expectFailure(joiner, 'no-sharer', 'launch', 'ev-nobody', 'uid-x', 'offer');
      assert.equal(body.name, 'ev-nobody');
      assert.equal(body.joinerUID, 'uid-x');
      // Without an ack only the event comes.
      const signalled = waitFor<[SignalingErrorBody]>(joiner, 'signalingError');
      send(joiner, 'launch', 'ev-nobody', 'offer');
      const [event] = await signalled;
      assert.equal(event.code, 'no-sharer');
      assert.equal(event.event, 'launch');
      assert.equal(event.name, 'ev-nobody');
      assert.equal(typeof event.message, 'string');
    });
  });

  describe(`share lifetimes (${label})`, () => {
    let topology: Topology;
    before(async () => {
      topology = await makeTopology({ defaultTtl: 400, maxTtl: 800 });
    });
    afterEach(() => disconnectAll());
    after(() => topology.close());

    it('grants the default ttl, caps a longer request at the maximum, and sends shareExpired', async () => {
      const sharer = await connect(topology.url('sharer'));
      const expired: string[] = [];
      sharer.on('shareExpired', (name) => expired.push(name));
      const dflt = await request<ShareGranted>(sharer, 'share', 'lt-default');
      const capped = await request<ShareGranted>(sharer, 'share', 'lt-capped', { ttl: 3_600_000 });
      const short = await request<ShareGranted>(sharer, 'share', 'lt-short', { ttl: 100 });
      assert.equal(dflt.ttl, 400);
      assert.equal(capped.ttl, 800);
      assert.equal(short.ttl, 100);
      assert.ok(capped.expiresAt - dflt.expiresAt >= 300, 'the cap shows in expiresAt too');
      await eventually(() => expired.length === 3, 5000, 'shareExpired of three shares');
      assert.deepEqual(expired.sort(), ['lt-capped', 'lt-default', 'lt-short']);
    });
  });
}
