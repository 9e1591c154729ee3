/**
 * Hostile input: wrong types, missing and extra arguments, huge and odd
 * names, oversized, binary and deeply nested payloads, malformed frames.
 * Each is refused (or relayed intact) without hurting the sender's
 * connection or anyone else's. Black-box: runs against any Topology.
 * @module
 */
import assert from 'node:assert/strict';
import { after, afterEach, before, describe, it } from 'node:test';
import type { ShareGranted } from '../../src/protocol/index.js';
import type { Topology, TopologyFactory } from '../support/topology.js';
import { collect, connect, disconnectAll, eventually, request, waitFor, type TestSocket } from '../support/util.js';
import { expectFailure, expectSignal, handshake, send } from './probe.js';

/** Nests `leaf` `depth` levels deep, alternating objects and arrays. */
function nest(depth: number, leaf: unknown): unknown {
  let value = leaf;
  for (let i = 0; i < depth; i++) value = i % 2 === 0 ? { down: value } : [value];
  return value;
}

export function hostileSuite(label: string, makeTopology: TopologyFactory): void {
  describe(`hostile input (${label})`, () => {
    let topology: Topology;
    before(async () => {
      topology = await makeTopology();
    });
    afterEach(() => disconnectAll());
    after(() => topology.close());

    /** A sharer of `name` and a joiner launched to it as `uid`. */
    const pair = async (name: string, uid: string): Promise<{ sharer: TestSocket; joiner: TestSocket }> => {
      const sharer = await connect(topology.url('sharer'));
      const joiner = await connect(topology.url('joiner'));
      assert.equal((await request<ShareGranted>(sharer, 'share', name)).ok, true);
      const launched = waitFor(sharer, 'launchResponse');
      assert.deepEqual(await request(joiner, 'launch', name, uid, 'offer'), { ok: true, joinerUID: uid });
      assert.deepEqual(await launched, [uid, 'offer']);
      return { sharer, joiner };
    };

    /** The socket can still do a whole exchange of its own. */
    const stillUsable = async (socket: TestSocket, role: 'sharer' | 'joiner', name: string): Promise<void> => {
      assert.equal(socket.connected, true);
      if (role === 'joiner') {
        const sharer = await connect(topology.url('sharer'));
        await request(sharer, 'share', name);
        const launched = waitFor(sharer, 'launchResponse');
        assert.deepEqual(await request(socket, 'launch', name, 'still', 'ok'), { ok: true, joinerUID: 'still' });
        assert.deepEqual(await launched, ['still', 'ok']);
      } else {
        const joiner = await connect(topology.url('joiner'));
        assert.equal((await request<ShareGranted>(socket, 'share', name)).ok, true);
        const launched = waitFor<[string, unknown]>(socket, 'launchResponse');
        await request(joiner, 'launch', name, 'still', 'ok');
        await launched;
        const answered = waitFor(joiner, 'answerResponse');
        assert.deepEqual(await request(socket, 'answer', name, 'still', 'ok'), { ok: true });
        assert.deepEqual(await answered, ['ok']);
      }
    };

    it('refuses wrong types for every argument of share and unshare with bad-request', async () => {
      const socket = await connect(topology.url('sharer'));
      const shares: unknown[][] = [
        [42],
        [true],
        [''],
        [[]],
        [['a']],
        ['ok', 42],
        ['ok', 'options'],
        ['ok', []],
        ['ok', true],
        ['ok', { ttl: 'long' }],
        ['ok', { ttl: -5 }],
        ['ok', { ttl: 0 }],
        ['ok', { ttl: 1.5 }],
        ['ok', { ttl: null }],
        ['ok', { maxJoins: 0 }],
        ['ok', { maxJoins: '3' }],
        ['ok', { maxJoins: -1 }],
        [{ ttl: 'x' }],
        [42, { ttl: 1000 }],
      ];
      for (const args of shares) await expectFailure(socket, 'bad-request', 'share', ...args);
      for (const args of [[42], [''], [{}], [['a']], [true]]) await expectFailure(socket, 'bad-request', 'unshare', ...args);
      // Nothing was shared by any of them.
      assert.deepEqual(await request(socket, 'unshare'), { ok: true, names: [] });
      // Past the safe integers a ttl is no longer a count of milliseconds.
      await expectFailure(socket, 'bad-request', 'share', 'hs-huge-ttl', { ttl: 1e300 });
      // A huge but exact ttl is just capped; unknown option keys are ignored.
      const capped = await request<ShareGranted>(socket, 'share', 'hs-huge-ttl', { ttl: Number.MAX_SAFE_INTEGER, color: 'blue' });
      assert.equal(capped.ok, true);
      assert.equal(capped.ttl, 86_400_000);
      await stillUsable(socket, 'sharer', 'hs-types-share');
    });

    it('refuses wrong types for every argument of launch and answer with bad-request', async () => {
      const { sharer, joiner } = await pair('hs-types', 'u');
      const launches: unknown[][] = [
        [42, 'u', 'm'],
        [null, 'u', 'm'],
        [{}, 'u', 'm'],
        [['hs-types'], 'u', 'm'],
        [true, 'u', 'm'],
        ['', 'u', 'm'],
        ['hs-types', 42, 'm'],
        ['hs-types', null, 'm'],
        ['hs-types', {}, 'm'],
        ['hs-types', '', 'm'],
        ['hs-types', ['u'], 'm'],
        [42, 'm'],
        [null, 'm'],
        [{ name: 'hs-types' }, 'm'],
      ];
      for (const args of launches) await expectFailure(joiner, 'bad-request', 'launch', ...args);
      const answers: unknown[][] = [
        [42, 'u', 'm'],
        [null, 'u', 'm'],
        ['', 'u', 'm'],
        ['hs-types', 42, 'm'],
        ['hs-types', null, 'm'],
        ['hs-types', '', 'm'],
        ['hs-types', { uid: 'u' }, 'm'],
        [42, 'm'],
        [null, 'm'],
        ['', 'm'],
        [['u'], 'm'],
      ];
      for (const args of answers) await expectFailure(sharer, 'bad-request', 'answer', ...args);
      // Without an ack, the same come back as signalingError events.
      await expectSignal(joiner, 'bad-request', 'launch', 42, 'u', 'm');
      await expectSignal(sharer, 'bad-request', 'answer', 'hs-types', 42, 'm');
      await expectSignal(sharer, 'bad-request', 'share', 42);
      // The exchange that was under way is intact.
      const answered = waitFor(joiner, 'answerResponse');
      assert.deepEqual(await request(sharer, 'answer', 'hs-types', 'u', 'answer'), { ok: true });
      assert.deepEqual(await answered, ['answer']);
    });

    it('refuses missing and extra arguments with bad-request', async () => {
      const { sharer, joiner } = await pair('hs-arity', 'u');
      await expectFailure(joiner, 'bad-request', 'launch');
      await expectFailure(joiner, 'bad-request', 'launch', 'hs-arity');
      await expectFailure(joiner, 'bad-request', 'launch', 'hs-arity', 'u', 'm', 'extra');
      await expectFailure(joiner, 'bad-request', 'launch', ...Array.from({ length: 20 }, (_, i) => `a${i}`));
      await expectFailure(sharer, 'bad-request', 'answer');
      await expectFailure(sharer, 'bad-request', 'answer', 'u');
      await expectFailure(sharer, 'bad-request', 'answer', 'hs-arity', 'u', 'm', 'extra');
      await expectFailure(sharer, 'bad-request', 'share', 'hs-arity-2', {}, 'extra');
      await expectFailure(sharer, 'bad-request', 'unshare', 'hs-arity', 'extra');
      await expectSignal(joiner, 'bad-request', 'launch');
      await expectSignal(joiner, 'bad-request', 'launch', 'hs-arity', 'u', 'm', 'extra');
      // The extra-argument unshare did not unshare.
      const launched = waitFor(sharer, 'launchResponse');
      await request(joiner, 'launch', 'hs-arity', 'u', 'still routed');
      assert.deepEqual(await launched, ['u', 'still routed']);
      assert.deepEqual(await request(sharer, 'unshare'), { ok: true, names: ['hs-arity'] });
    });

    it('ignores events outside the protocol', async () => {
      const socket = await connect(topology.url('joiner'));
      const errors = collect(socket, 'signalingError');
      for (const event of ['bogus', 'constructor', '__proto__', 'hasOwnProperty', 'toString', 'launchResponse', 'signalingError']) {
        send(socket, event, 'x', { y: 1 });
      }
      await stillUsable(socket, 'joiner', 'hs-unknown-events');
      assert.deepEqual(errors, []);
    });

    it('refuses names and joinerUIDs over 256 characters; 256 work end to end', async () => {
      const long = 'n'.repeat(257);
      const max = 'm'.repeat(256);
      const sharer = await connect(topology.url('sharer'));
      const joiner = await connect(topology.url('joiner'));
      await expectFailure(sharer, 'bad-request', 'share', long);
      await expectFailure(sharer, 'bad-request', 'share', 'x'.repeat(100_000));
      await expectFailure(sharer, 'bad-request', 'unshare', long);
      await expectFailure(joiner, 'bad-request', 'launch', long, 'u', 'offer');
      await expectFailure(joiner, 'bad-request', 'launch', long, 'offer');
      await expectFailure(sharer, 'bad-request', 'answer', long, 'u', 'answer');
      await expectFailure(joiner, 'bad-request', 'launch', 'hs-long', 'u'.repeat(257), 'offer');
      await expectFailure(sharer, 'bad-request', 'answer', 'u'.repeat(257), 'answer');
      assert.equal((await request<ShareGranted>(sharer, 'share', max)).name, max);
      const launched = waitFor(sharer, 'launchResponse');
      assert.deepEqual(await request(joiner, 'launch', max, max, 'offer'), { ok: true, joinerUID: max });
      assert.deepEqual(await launched, [max, 'offer']);
      const answered = waitFor(joiner, 'answerResponse');
      await request(sharer, 'answer', max, max, 'answer');
      assert.deepEqual(await answered, ['answer']);
    });

    it('refuses the empty name', async () => {
      const sharer = await connect(topology.url('sharer'));
      const joiner = await connect(topology.url('joiner'));
      await expectFailure(sharer, 'bad-request', 'share', '');
      await expectFailure(sharer, 'bad-request', 'unshare', '');
      await expectFailure(joiner, 'bad-request', 'launch', '', 'u', 'offer');
      await expectFailure(joiner, 'bad-request', 'launch', '', 'offer');
      await expectFailure(sharer, 'bad-request', 'answer', '', 'u', 'answer');
    });

    const oddNames = [
      '__proto__',
      'constructor',
      'toString',
      'hasOwnProperty',
      'valueOf',
      'prototype',
      '__defineGetter__',
      '🔗 réseau 网络 ✓',
      'e\u0301\u200d\u0000',
      ' ',
      '1:2:3',
      '*',
      '../..',
    ];
    for (const name of oddNames) {
      it(`treats ${JSON.stringify(name)} as an ordinary name, end to end`, async () => {
        const sharer = await connect(topology.url('sharer'));
        const joiner = await connect(topology.url('joiner'));
        assert.equal((await request<ShareGranted>(sharer, 'share', name)).name, name);
        // Odd names as joinerUIDs too.
        const uid = name === '__proto__' ? 'constructor' : '__proto__';
        const launched = waitFor(sharer, 'launchResponse');
        assert.deepEqual(await request(joiner, 'launch', name, uid, 'offer'), { ok: true, joinerUID: uid });
        assert.deepEqual(await launched, [uid, 'offer']);
        const answered = waitFor(joiner, 'answerResponse');
        assert.deepEqual(await request(sharer, 'answer', name, uid, 'answer'), { ok: true });
        assert.deepEqual(await answered, ['answer']);
        // The 2-argument forms.
        const short = waitFor<[string, unknown]>(sharer, 'launchResponse');
        await request(joiner, 'launch', name, 'offer-2');
        assert.deepEqual(await short, [joiner.id, 'offer-2']);
        const shortAnswer = waitFor(joiner, 'answerResponse');
        await request(sharer, 'answer', joiner.id, 'answer-2');
        assert.deepEqual(await shortAnswer, ['answer-2']);
        // A second joiner with the same uid is refused, as for any name.
        const other = await connect(topology.url('joiner'));
        await expectFailure(other, 'uid-taken', 'launch', name, uid, 'offer');
        await expectFailure(sharer, 'unknown-joiner', 'answer', name, 'nobody', 'x');
        assert.deepEqual(await request(sharer, 'unshare', name), { ok: true, names: [name] });
        await expectFailure(other, 'no-sharer', 'launch', name, 'late', 'offer');
      });
    }

    it('keeps (name, joinerUID) pairs apart even when their concatenations coincide', async () => {
      const sharer = await connect(topology.url('sharer'));
      await request(sharer, 'share', 'ab');
      await request(sharer, 'share', 'a');
      await request(sharer, 'share', '1:a');
      const joiners = await Promise.all([0, 1, 2].map(() => connect(topology.url('joiner'))));
      const pairs: [string, string][] = [
        ['ab', 'c'],
        ['a', 'bc'],
        ['1:a', 'bc'],
      ];
      const offers = collect<[string, unknown]>(sharer, 'launchResponse');
      for (const [i, [name, uid]] of pairs.entries()) {
        assert.deepEqual(await request(joiners[i]!, 'launch', name, uid, `offer-${i}`), { ok: true, joinerUID: uid });
      }
      // A sharer answers offers it holds: in cluster mode a launch's ack can
      // reach the test before the offer reaches the sharer's node.
      await eventually(() => offers.length === pairs.length, 3000, 'the three offers at the sharer');
      const got = joiners.map((j) => waitFor(j, 'answerResponse'));
      for (const [i, [name, uid]] of pairs.entries()) {
        assert.deepEqual(await request(sharer, 'answer', name, uid, `answer-${i}`), { ok: true });
      }
      assert.deepEqual(await Promise.all(got), [['answer-0'], ['answer-1'], ['answer-2']]);
      assert.deepEqual(offers, [
        ['c', 'offer-0'],
        ['bc', 'offer-1'],
        ['bc', 'offer-2'],
      ]);
    });

    it('refuses oversized payloads (string, binary, nested) with too-large and keeps the socket usable', async () => {
      const { sharer, joiner } = await pair('hs-big', 'u');
      const limit = 64 * 1024;
      const payloads: [string, unknown][] = [
        ['string', 'x'.repeat(limit + 1)],
        ['multi-byte string', '€'.repeat(Math.ceil(limit / 3) + 1)],
        ['escaped string', `${'\r\n'.repeat(limit / 2)}x`],
        ['Buffer', Buffer.alloc(limit + 1, 7)],
        ['Uint8Array', new Uint8Array(limit + 1)],
        ['nested object', { sdp: { a: 'a'.repeat(limit / 2), b: ['b'.repeat(limit / 2)] } }],
        ['many small items', Array.from({ length: 20_000 }, (_, i) => i)],
        ['binary inside an object', { kind: 'blob', parts: [Buffer.alloc(limit / 2), Buffer.alloc(limit / 2 + 1)] }],
        ['wide object', Object.fromEntries(Array.from({ length: 10_000 }, (_, i) => [`key${i}`, i]))],
      ];
      const seen = collect(sharer, 'launchResponse');
      for (const [what, payload] of payloads) {
        const body = await expectFailure(joiner, 'too-large', 'launch', 'hs-big', 'u', payload);
        assert.equal(body.name, 'hs-big', what);
        await expectFailure(sharer, 'too-large', 'answer', 'hs-big', 'u', payload);
      }
      assert.deepEqual(seen, []);
      // At the limit exactly, escapes and multi-byte characters included, a string message goes through whole.
      for (const atLimit of ['x'.repeat(limit), '\r\n'.repeat(limit / 2), '€'.repeat(Math.floor(limit / 3)), `"\\${'é'.repeat(limit / 2 - 1)}`]) {
        const relayed = waitFor(sharer, 'launchResponse');
        await request(joiner, 'launch', 'hs-big', 'u', atLimit);
        assert.deepEqual(await relayed, ['u', atLimit]);
      }
      // The exchange goes on.
      const launched = waitFor(sharer, 'launchResponse');
      await request(joiner, 'launch', 'hs-big', 'u', 'candidate');
      assert.deepEqual(await launched, ['u', 'candidate']);
      const answered = waitFor(joiner, 'answerResponse');
      await request(sharer, 'answer', 'hs-big', 'u', 'answer');
      assert.deepEqual(await answered, ['answer']);
      await stillUsable(joiner, 'joiner', 'hs-big-after');
    });

    it('relays binary payloads intact, both ways', async () => {
      const { sharer, joiner } = await pair('hs-binary', 'u');
      const bytes = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
      const launched = waitFor<[string, Buffer]>(sharer, 'launchResponse');
      await request(joiner, 'launch', 'hs-binary', 'u', bytes);
      const [, got] = await launched;
      assert.ok(Buffer.from(got).equals(bytes));
      const mixed = { kind: 'sdp', blob: bytes, list: [Buffer.from('candidate'), 'text', { deeper: Buffer.alloc(1000, 0xff) }] };
      const launched2 = waitFor<[string, typeof mixed]>(sharer, 'launchResponse');
      await request(joiner, 'launch', 'hs-binary', 'u', mixed);
      const [, got2] = await launched2;
      assert.equal(got2.kind, 'sdp');
      assert.ok(Buffer.from(got2.blob).equals(bytes));
      assert.ok(Buffer.from(got2.list[0] as Buffer).equals(Buffer.from('candidate')));
      assert.equal(got2.list[1], 'text');
      assert.ok(Buffer.from((got2.list[2] as { deeper: Buffer }).deeper).equals(Buffer.alloc(1000, 0xff)));
      // Exactly at the limit, binary passes.
      const full = Buffer.alloc(64 * 1024, 0xab);
      const launched3 = waitFor<[string, Buffer]>(sharer, 'launchResponse');
      await request(joiner, 'launch', 'hs-binary', 'u', full);
      assert.ok(Buffer.from((await launched3)[1]).equals(full));
      const answered = waitFor<[Buffer]>(joiner, 'answerResponse');
      await request(sharer, 'answer', 'hs-binary', 'u', bytes.subarray(0, 100));
      assert.ok(Buffer.from((await answered)[0]).equals(bytes.subarray(0, 100)));
    });

    it('relays moderately nested objects intact and refuses pathological nesting', async () => {
      const { sharer, joiner } = await pair('hs-deep', 'u');
      const moderate = nest(20, 'leaf');
      const launched = waitFor(sharer, 'launchResponse');
      await request(joiner, 'launch', 'hs-deep', 'u', moderate);
      assert.deepEqual(await launched, ['u', moderate]);
      await expectFailure(joiner, 'too-large', 'launch', 'hs-deep', 'u', nest(1000, 'leaf'));
      await expectFailure(sharer, 'too-large', 'answer', 'hs-deep', 'u', nest(1000, 'leaf'));
      // An object whose keys look like prototype pollution is relayed as plain data.
      const sly = JSON.parse('{"__proto__":{"polluted":true},"constructor":{"prototype":{"polluted":true}}}') as unknown;
      const launched2 = waitFor<[string, Record<string, unknown>]>(sharer, 'launchResponse');
      await request(joiner, 'launch', 'hs-deep', 'u', sly);
      const [, got] = await launched2;
      assert.deepEqual(Object.keys(got).sort(), ['__proto__', 'constructor']);
      assert.equal(({} as Record<string, unknown>)['polluted'], undefined);
      await stillUsable(sharer, 'sharer', 'hs-deep-after');
    });

    it('closes only the connection of a client that sends a malformed or oversized frame', async () => {
      const { sharer, joiner } = await pair('hs-frames', 'u');
      const bad = await connect(topology.url('joiner'));
      const closed = waitFor<[string]>(bad, 'disconnect', 10_000);
      // Below socket.io: an event packet whose JSON is cut short.
      (bad.io.engine as unknown as { write(data: string): void }).write('2["launch","hs-frames",');
      await closed;
      const huge = await connect(topology.url('joiner'));
      const closedHuge = waitFor<[string]>(huge, 'disconnect', 10_000);
      huge.emit('launch', 'hs-frames', 'v', 'x'.repeat(3_000_000));
      await closedHuge;
      // The others are still connected and routed.
      const launched = waitFor(sharer, 'launchResponse');
      await request(joiner, 'launch', 'hs-frames', 'u', 'still here');
      assert.deepEqual(await launched, ['u', 'still here']);
    });

    it('still serves a fresh pair of clients after all of this', async () => {
      await handshake(topology, 'hs-after', connect);
    });
  });
}
