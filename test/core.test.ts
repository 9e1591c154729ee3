/**
 * The signaling core alone, on a manual clock: InMemoryRegistry and
 * LocalDelivery (the real single-node parts), and a sink that records what
 * the endpoint would have emitted.
 */
import assert from 'node:assert/strict';
import { setImmediate as flushed } from 'node:timers/promises';
import { describe, it } from 'node:test';
import { InMemoryRegistry } from '../src/cluster/in-memory-registry.js';
import { LocalDelivery } from '../src/cluster/local-delivery.js';
import { SignalingCore, type CoreLimits, type SocketSink } from '../src/core/signaling-core.js';
import { SignalingError } from '../src/core/signaling-error.js';
import type { Registry } from '../src/core/registry.js';
import type { RouteOutcome } from '../src/core/types.js';
import type { ErrorCode } from '../src/protocol/errors.js';
import { ManualClock } from './support/manual-clock.js';

type Event =
  | { event: 'launchResponse'; socket: string; uid: string; message: unknown }
  | { event: 'answerResponse'; socket: string; message: unknown }
  | { event: 'shareExpired'; socket: string; name: string }
  | { event: 'sharerGone'; socket: string; name: string; uid: string };

class RecordingSink implements SocketSink {
  readonly events: Event[] = [];
  launchResponse(socket: string, uid: string, message: unknown): void {
    this.events.push({ event: 'launchResponse', socket, uid, message });
  }
  answerResponse(socket: string, message: unknown): void {
    this.events.push({ event: 'answerResponse', socket, message });
  }
  shareExpired(socket: string, name: string): void {
    this.events.push({ event: 'shareExpired', socket, name });
  }
  sharerGone(socket: string, name: string, uid: string): void {
    this.events.push({ event: 'sharerGone', socket, name, uid });
  }
  of<K extends Event['event']>(event: K, socket?: string): Extract<Event, { event: K }>[] {
    return this.events.filter((e): e is Extract<Event, { event: K }> => e.event === event && (socket === undefined || e.socket === socket));
  }
}

const LIMITS: CoreLimits = { defaultTtl: 10_000, maxTtl: 60_000, maxSharesPerSocket: 4, maxRoutesPerSocket: 3 };

function setup(limits: Partial<CoreLimits> = {}) {
  const clock = new ManualClock();
  const sink = new RecordingSink();
  const registry = new InMemoryRegistry();
  const failures: unknown[] = [];
  const core = new SignalingCore({
    registry,
    delivery: new LocalDelivery(),
    sink,
    clock,
    limits: { ...LIMITS, ...limits },
    observer: { relayed: () => {}, backgroundFailed: (_op, error) => failures.push(error) },
  });
  const attach = (...ids: string[]): void => ids.forEach((id) => core.attach(id));
  return { clock, sink, registry, core, attach, failures };
}

/** An in-memory registry whose removeShare waits until `release` is called (once per removal). */
function slowUnshareRegistry(): { registry: InMemoryRegistry; release: () => void } {
  let waiting = (): void => {};
  class SlowUnshareRegistry extends InMemoryRegistry {
    override async removeShare(name: string, sharer: string): Promise<void> {
      await new Promise<void>((resolve) => (waiting = resolve));
      return super.removeShare(name, sharer);
    }
  }
  return { registry: new SlowUnshareRegistry(), release: () => waiting() };
}

async function rejectsWith(promise: Promise<unknown>, code: ErrorCode): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof SignalingError, `expected a SignalingError, got ${String(error)}`);
    assert.equal(error.code, code);
    return true;
  });
}

describe('SignalingCore on a manual clock', () => {
  describe('expiry', () => {
    it('fires shareExpired exactly when the ttl runs out, once', async () => {
      const { clock, sink, core, registry, attach } = setup();
      attach('sharer', 'joiner');
      const start = clock.now();
      const grant = await core.share('sharer', 'room', { ttl: 1000 });
      assert.deepEqual(grant, { name: 'room', ttl: 1000, expiresAt: start + 1000 });

      clock.advance(999);
      await flushed();
      assert.deepEqual(sink.of('shareExpired'), []);
      await core.launch('joiner', 'room', 'j1', 'offer');
      assert.equal(sink.of('launchResponse', 'sharer').length, 1);

      clock.advance(1);
      await flushed();
      assert.deepEqual(sink.of('shareExpired'), [{ event: 'shareExpired', socket: 'sharer', name: 'room' }]);
      clock.advance(60_000);
      await flushed();
      assert.equal(sink.of('shareExpired').length, 1);
      await flushed();
      assert.equal((await registry.counts()).shares, 0);
      assert.equal(core.localStats().shares, 0);
      // New joiners are refused; the one already routed may finish its exchange.
      await rejectsWith(core.launch('joiner', 'room', 'j2', 'offer'), 'no-sharer');
      await core.launch('joiner', 'room', 'j1', 'candidate');
      assert.deepEqual(
        sink.of('launchResponse', 'sharer').map((e) => e.message),
        ['offer', 'candidate'],
      );
      await core.answer('sharer', 'room', 'j1', 'answer');
      assert.deepEqual(sink.of('answerResponse', 'joiner'), [{ event: 'answerResponse', socket: 'joiner', message: 'answer' }]);
    });

    it('tells of an expiry before it acks an unshare sent while the registry was forgetting the share', async () => {
      // In cluster mode the registry forgets a share over a round trip to
      // Redis, and the sharer hears shareExpired after that.
      const { registry, release } = slowUnshareRegistry();
      const sink = new RecordingSink();
      const clock = new ManualClock();
      const core = new SignalingCore({ registry, delivery: new LocalDelivery(), sink, clock, limits: LIMITS });
      core.attach('sharer');
      await core.share('sharer', 'room', { ttl: 1000 });
      clock.advance(1000);
      await flushed();
      const order: string[] = [];
      const unshared = core.unshare('sharer', 'room').then((names) => order.push(`ack ${JSON.stringify(names)}`));
      await flushed();
      assert.deepEqual(order, [], 'the unshare was acked while the expiry was still under way');
      release();
      await unshared;
      assert.deepEqual(sink.of('shareExpired'), [{ event: 'shareExpired', socket: 'sharer', name: 'room' }]);
      assert.deepEqual(order, ['ack []']);
      // Nothing is left waiting: a later unshare of the socket answers at once.
      assert.deepEqual(await core.unshare('sharer'), []);
    });

    it('uses the default ttl and caps a longer one at the maximum', async () => {
      const { clock, sink, core, attach } = setup();
      attach('a');
      assert.equal((await core.share('a', 'default', {})).ttl, LIMITS.defaultTtl);
      assert.equal((await core.share('a', 'capped', { ttl: LIMITS.maxTtl * 10 })).ttl, LIMITS.maxTtl);
      clock.advance(LIMITS.defaultTtl - 1);
      await flushed();
      assert.deepEqual(sink.of('shareExpired'), []);
      clock.advance(1);
      await flushed();
      assert.deepEqual(
        sink.of('shareExpired').map((e) => e.name),
        ['default'],
      );
      clock.advance(LIMITS.maxTtl - LIMITS.defaultTtl - 1);
      await flushed();
      assert.equal(sink.of('shareExpired').length, 1);
      clock.advance(1);
      await flushed();
      assert.deepEqual(
        sink.of('shareExpired').map((e) => e.name),
        ['default', 'capped'],
      );
      assert.equal(clock.pending, 0);
    });

    it('re-sharing renews the lifetime and keeps a single timer', async () => {
      const { clock, sink, core, attach } = setup();
      attach('sharer', 'joiner');
      await core.share('sharer', 'room', { ttl: 1000 });
      clock.advance(600);
      const renewed = await core.share('sharer', 'room', { ttl: 1000 });
      assert.equal(renewed.expiresAt, clock.now() + 1000);
      assert.equal(clock.pending, 1);

      clock.advance(500); // past the first expiry
      await flushed();
      assert.deepEqual(sink.of('shareExpired'), []);
      await core.launch('joiner', 'room', 'j1', 'offer');
      assert.equal(sink.of('launchResponse').length, 1);

      clock.advance(499);
      await flushed();
      assert.deepEqual(sink.of('shareExpired'), []);
      clock.advance(1);
      await flushed();
      assert.equal(sink.of('shareExpired').length, 1);
      assert.equal(clock.pending, 0);
    });

    it('unshare cancels the timer: no shareExpired afterwards', async () => {
      const { clock, sink, core, registry, attach } = setup();
      attach('sharer');
      await core.share('sharer', 'a', { ttl: 1000 });
      await core.share('sharer', 'b', { ttl: 1000 });
      assert.deepEqual(await core.unshare('sharer', 'a'), ['a']);
      assert.deepEqual(await core.unshare('sharer', 'a'), []);
      assert.equal(clock.pending, 1);
      assert.deepEqual(await core.unshare('sharer'), ['b']);
      assert.equal(clock.pending, 0);
      clock.advance(5000);
      await flushed();
      assert.deepEqual(sink.of('shareExpired'), []);
      assert.deepEqual(await registry.counts(), { shares: 0, routes: 0 });
    });
  });

  describe('maxJoins', () => {
    it('admits maxJoins distinct joiners; repeated launches of one joiner count once', async () => {
      const { core, sink, attach } = setup();
      attach('sharer', 'j1', 'j2', 'j3');
      await core.share('sharer', 'room', { maxJoins: 2 });
      await core.launch('j1', 'room', 'u1', 'offer');
      await core.launch('j1', 'room', 'u1', 'candidate');
      await core.launch('j2', 'room', 'u2', 'offer');
      await rejectsWith(core.launch('j3', 'room', 'u3', 'offer'), 'share-full');
      await core.launch('j2', 'room', 'u2', 'candidate');
      assert.deepEqual(
        sink.of('launchResponse').map((e) => [e.uid, e.message]),
        [
          ['u1', 'offer'],
          ['u1', 'candidate'],
          ['u2', 'offer'],
          ['u2', 'candidate'],
        ],
      );
    });

    it('counts per sharer, survives a renewal, and a joiner that left still counts', async () => {
      const { core, clock, attach } = setup();
      attach('s1', 's2', 'j1', 'j2', 'j3');
      await core.share('s1', 'room', { maxJoins: 1, ttl: 1000 });
      await core.share('s2', 'room', { maxJoins: 1, ttl: 1000 });
      await core.launch('j1', 'room', 'u1', 'offer');
      await core.launch('j2', 'room', 'u2', 'offer');
      await rejectsWith(core.launch('j3', 'room', 'u3', 'offer'), 'share-full');
      await core.detach('j1');
      clock.advance(500);
      await core.share('s1', 'room', { maxJoins: 1, ttl: 1000 });
      await rejectsWith(core.launch('j3', 'room', 'u3', 'offer'), 'share-full');
      // A limit raised by a renewal lets one more in.
      await core.share('s2', 'room', { maxJoins: 2, ttl: 1000 });
      await core.launch('j3', 'room', 'u3', 'offer');
    });

    it('spreads joiners over every sharer with room', async () => {
      const { core, sink, attach } = setup({ maxRoutesPerSocket: 64 });
      attach('s1', 's2', 's3', 'joiner');
      for (const s of ['s1', 's2', 's3']) await core.share(s, 'room', { maxJoins: 10 });
      for (let i = 0; i < 30; i++) await core.launch('joiner', 'room', `u${i}`, 'offer');
      await rejectsWith(core.launch('joiner', 'room', 'u30', 'offer'), 'share-full');
      for (const s of ['s1', 's2', 's3']) assert.equal(sink.of('launchResponse', s).length, 10, s);
    });
  });

  describe('routes', () => {
    it('a uid held by another socket is uid-taken; the holder keeps its route', async () => {
      const { core, sink, attach } = setup();
      attach('sharer', 'j1', 'j2');
      await core.share('sharer', 'room', {});
      await core.launch('j1', 'room', 'same', 'offer');
      await rejectsWith(core.launch('j2', 'room', 'same', 'offer'), 'uid-taken');
      await core.launch('j1', 'room', 'same', 'candidate');
      assert.deepEqual(
        sink.of('launchResponse').map((e) => e.message),
        ['offer', 'candidate'],
      );
    });

    it('only the routed sharer may answer; unknown joiners are unknown-joiner', async () => {
      const { core, sink, attach } = setup();
      attach('s1', 's2', 'joiner');
      await core.share('s1', 'room', {});
      await core.launch('joiner', 'room', 'u1', 'offer');
      await core.share('s2', 'room', {});
      await rejectsWith(core.answer('s2', 'room', 'u1', 'answer'), 'not-sharer');
      await rejectsWith(core.answer('s2', undefined, 'u1', 'answer'), 'not-sharer');
      await rejectsWith(core.answer('s1', 'room', 'nobody', 'answer'), 'unknown-joiner');
      await core.answer('s1', undefined, 'u1', 'answer-2arg');
      await core.answer('s1', 'room', 'u1', 'answer-3arg');
      assert.deepEqual(
        sink.of('answerResponse', 'joiner').map((e) => e.message),
        ['answer-2arg', 'answer-3arg'],
      );
    });

    it('evicts the oldest route past maxRoutesPerSocket, and its sharer forgets it', async () => {
      const { core, sink, registry, attach } = setup({ maxRoutesPerSocket: 2 });
      attach('sharer', 'joiner');
      for (const name of ['n1', 'n2', 'n3']) await core.share('sharer', name, {});
      await core.launch('joiner', 'n1', 'u', 'offer-1');
      await core.launch('joiner', 'n2', 'u', 'offer-2');
      await core.answer('sharer', 'n1', 'u', 'answer-1');
      await core.launch('joiner', 'n3', 'u', 'offer-3');
      await flushed();

      assert.deepEqual(await registry.counts(), { shares: 3, routes: 2 });
      assert.equal(core.localStats().joinerRoutes, 2);
      assert.equal(core.localStats().sharerRoutes, 2);
      // The sharer no longer knows the evicted joiner...
      await rejectsWith(core.answer('sharer', 'n1', 'u', 'late'), 'unknown-joiner');
      // ...while the other two routes still carry answers.
      await core.answer('sharer', 'n2', 'u', 'answer-2');
      await core.answer('sharer', 'n3', 'u', 'answer-3');
      assert.deepEqual(
        sink.of('answerResponse', 'joiner').map((e) => e.message),
        ['answer-1', 'answer-2', 'answer-3'],
      );
      // Launching again on the evicted name routes afresh (a new join).
      await core.launch('joiner', 'n1', 'u', 'offer-1b');
      await flushed();
      assert.deepEqual(await registry.counts(), { shares: 3, routes: 2 });
      await rejectsWith(core.answer('sharer', 'n2', 'u', 'late'), 'unknown-joiner');
      await core.answer('sharer', 'n1', 'u', 'answer-1b');
      assert.equal(sink.of('answerResponse', 'joiner').at(-1)?.message, 'answer-1b');
    });

    it('evicts through a registry that ignores the eviction the route call asks for', async () => {
      // An older Registry implementation: `route` without its `evict` argument.
      class FourArgumentRegistry extends InMemoryRegistry {
        override route(name: string, uid: string, joiner: string, now: number): RouteOutcome | Promise<RouteOutcome> {
          return super.route(name, uid, joiner, now);
        }
      }
      const registry = new FourArgumentRegistry();
      const sink = new RecordingSink();
      const core = new SignalingCore({ registry, delivery: new LocalDelivery(), sink, clock: new ManualClock(), limits: { ...LIMITS, maxRoutesPerSocket: 2 } });
      for (const id of ['sharer', 'joiner']) core.attach(id);
      for (const name of ['n1', 'n2', 'n3']) await core.share('sharer', name, {});
      for (const name of ['n1', 'n2', 'n3']) await core.launch('joiner', name, 'u', `offer-${name}`);
      assert.deepEqual(await registry.counts(), { shares: 3, routes: 2 });
      assert.equal(await registry.lookupRoute('n1', 'u'), undefined);
      await rejectsWith(core.answer('sharer', 'n1', 'u', 'late'), 'unknown-joiner');
    });

    /**
     * A joiner at a cap of 2 routes (n1, n2, each to its own sharer) whose
     * third launch (n3) the registry answers only when `release` is called.
     */
    async function gatedThirdLaunch(): Promise<{
      core: SignalingCore;
      registry: InMemoryRegistry;
      sink: RecordingSink;
      third: Promise<void>;
      release: () => void;
    }> {
      const gates: (() => void)[] = [];
      class GatedRegistry extends InMemoryRegistry {
        hold = false;
        override route(...args: Parameters<Registry['route']>): RouteOutcome | Promise<RouteOutcome> {
          if (!this.hold) return super.route(...args);
          return new Promise<void>((resolve) => gates.push(resolve)).then(() => super.route(...args));
        }
      }
      const registry = new GatedRegistry();
      const sink = new RecordingSink();
      const core = new SignalingCore({ registry, delivery: new LocalDelivery(), sink, clock: new ManualClock(), limits: { ...LIMITS, maxRoutesPerSocket: 2 } });
      for (const id of ['s1', 's2', 's3', 'joiner']) core.attach(id);
      for (const [i, name] of ['n1', 'n2', 'n3'].entries()) await core.share(`s${i + 1}`, name, {});
      await core.launch('joiner', 'n1', 'u', 'offer-1');
      await core.launch('joiner', 'n2', 'u', 'offer-2');
      registry.hold = true;
      const third = core.launch('joiner', 'n3', 'u', 'offer-3');
      await flushed();
      assert.equal(gates.length, 1);
      return { core, registry, sink, third, release: () => gates[0]!() };
    }

    it('drops the route the registry evicted even when a route that went meanwhile left room', async () => {
      // Meanwhile the joiner loses its route on n2 (its sharer leaves), so the
      // core would not need to evict, but the registry has already removed n1.
      const { core, registry, sink, third, release } = await gatedThirdLaunch();
      await core.detach('s2');
      assert.deepEqual(sink.of('sharerGone'), [{ event: 'sharerGone', socket: 'joiner', name: 'n2', uid: 'u' }]);
      release();
      await third;
      await flushed();
      assert.deepEqual(await registry.counts(), { shares: 2, routes: 1 });
      assert.equal(core.localStats().joinerRoutes, 1);
      // s1 was told: it forgot the joiner, as the registry did.
      assert.equal(core.localStats().sharerRoutes, 1);
      await rejectsWith(core.answer('s1', 'n1', 'u', 'late'), 'unknown-joiner');
      await core.answer('s3', 'n3', 'u', 'answer-3');
      assert.deepEqual(sink.of('answerResponse', 'joiner').map((e) => e.message), ['answer-3']);
    });

    it('keeps the new route when the route to evict itself went while the registry answered', async () => {
      // The route the registry was asked to evict (n1) goes first (its sharer
      // leaves), so its object may be reused for the new route: the new
      // route must stay, beside n2.
      const { core, registry, sink, third, release } = await gatedThirdLaunch();
      await core.detach('s1');
      assert.deepEqual(sink.of('sharerGone'), [{ event: 'sharerGone', socket: 'joiner', name: 'n1', uid: 'u' }]);
      release();
      await third;
      await flushed();
      assert.deepEqual(await registry.counts(), { shares: 2, routes: 2 });
      assert.equal(core.localStats().joinerRoutes, 2);
      assert.equal(core.localStats().sharerRoutes, 2);
      await core.answer('s2', 'n2', 'u', 'answer-2');
      await core.answer('s3', 'n3', 'u', 'answer-3');
      assert.deepEqual(sink.of('answerResponse', 'joiner').map((e) => e.message), ['answer-2', 'answer-3']);
      assert.deepEqual(sink.of('launchResponse', 's3').map((e) => e.message), ['offer-3']);
    });

    it('the 2-argument answer goes to the latest route of that uid', async () => {
      const { core, sink, attach } = setup();
      attach('sharer', 'j1', 'j2');
      await core.share('sharer', 'a', {});
      await core.share('sharer', 'b', {});
      await core.launch('j1', 'a', 'u', 'offer-a');
      await core.launch('j2', 'b', 'u', 'offer-b');
      await core.answer('sharer', undefined, 'u', 'to-latest');
      assert.deepEqual(sink.of('answerResponse', 'j2').map((e) => e.message), ['to-latest']);
      await core.detach('j2');
      await core.answer('sharer', undefined, 'u', 'falls-back');
      assert.deepEqual(sink.of('answerResponse', 'j1').map((e) => e.message), ['falls-back']);
    });
  });

  describe('detach', () => {
    it('tells routed joiners sharer-gone at once and routes their next launch afresh', async () => {
      const { core, sink, attach } = setup();
      attach('s1', 'joiner');
      await core.share('s1', 'room', {});
      await core.launch('joiner', 'room', 'u', 'offer');
      attach('s2');
      await core.share('s2', 'room', {});
      await core.detach('s1');
      assert.deepEqual(sink.of('sharerGone'), [{ event: 'sharerGone', socket: 'joiner', name: 'room', uid: 'u' }]);
      await core.launch('joiner', 'room', 'u', 'offer-again');
      assert.deepEqual(sink.of('launchResponse', 's2').map((e) => e.message), ['offer-again']);
      await core.detach('s2');
      await rejectsWith(core.launch('joiner', 'room', 'u', 'offer-3'), 'no-sharer');
    });

    it('leaves the registry and the core at zero after a busy run', async () => {
      const { core, registry, clock, sink, attach, failures } = setup({ maxRoutesPerSocket: 4 });
      const sharers = ['s0', 's1', 's2', 's3'];
      const joiners = Array.from({ length: 12 }, (_, i) => `j${i}`);
      attach(...sharers, ...joiners);
      for (const [i, s] of sharers.entries()) {
        await core.share(s, 'common', { ttl: 5000 });
        await core.share(s, `own-${i}`, { ttl: 1000 * (i + 1) });
      }
      for (const [i, j] of joiners.entries()) {
        await core.launch(j, 'common', `u${i}`, 'offer');
        await core.launch(j, `own-${i % 4}`, `u${i}`, 'offer');
        await core.launch(j, 'common', `u${i}`, 'candidate');
      }
      for (const event of sink.of('launchResponse')) await core.answer(event.socket, undefined, event.uid, 'answer');
      clock.advance(2500); // own-0 and own-1 expire
      await flushed();
      assert.equal(sink.of('shareExpired').length, 2);
      const busy = await core.stats();
      assert.equal(busy.sockets, 16);
      assert.ok(busy.registry.routes > 0 && busy.registry.shares > 0);

      for (const id of [...joiners.slice(0, 6), 's0', 's1', ...joiners.slice(6), 's2', 's3']) await core.detach(id);
      await flushed();
      assert.deepEqual(await core.stats(), {
        sockets: 0,
        shares: 0,
        joinerRoutes: 0,
        sharerRoutes: 0,
        registry: { shares: 0, routes: 0 },
      });
      assert.equal(clock.pending, 0);
      assert.deepEqual(failures, []);
      // A detached socket's timers are gone: nothing fires later.
      const expired = sink.of('shareExpired').length;
      clock.advance(60_000);
      await flushed();
      assert.equal(sink.of('shareExpired').length, expired);
    });

    it('a socket that leaves while its launch is being routed leaves no route behind', async () => {
      const { core, registry, attach } = setup();
      attach('sharer', 'joiner');
      await core.share('sharer', 'room', {});
      const launching = core.launch('joiner', 'room', 'u', 'offer');
      const detaching = core.detach('joiner');
      await Promise.allSettled([launching, detaching]);
      await flushed();
      assert.equal((await registry.counts()).routes, 0);
      assert.equal(core.localStats().sharerRoutes, 0);
    });

    it('relays nothing to a socket whose detach is under way, and its joiners hear sharer-gone once', async () => {
      // The registry forgets shares only when told: a detach waits for that
      // before it drops the socket's routes, so they outlive the socket a while.
      const { registry, release } = slowUnshareRegistry();
      const sink = new RecordingSink();
      const core = new SignalingCore({ registry, delivery: new LocalDelivery(), sink, clock: new ManualClock(), limits: LIMITS });
      for (const id of ['sharer', 'joiner']) core.attach(id);
      await core.share('sharer', 'room', {});
      await core.share('joiner', 'own', {});
      await core.launch('joiner', 'room', 'u', 'offer');
      await core.answer('sharer', 'room', 'u', 'answer');

      // The joiner leaves: the sharer's answers reach nobody meanwhile.
      const joinerGone = core.detach('joiner');
      await core.answer('sharer', 'room', 'u', 'late answer');
      release();
      await joinerGone;
      assert.deepEqual(sink.of('answerResponse').map((e) => e.message), ['answer']);
      await rejectsWith(core.answer('sharer', 'room', 'u', 'later'), 'unknown-joiner');

      // The sharer leaves: a joiner's candidates reach nobody meanwhile, and it is told once.
      core.attach('joiner-2');
      await core.launch('joiner-2', 'room', 'u2', 'offer-2');
      const sharerGone = core.detach('sharer');
      await core.launch('joiner-2', 'room', 'u2', 'candidate');
      release();
      await sharerGone;
      assert.deepEqual(sink.of('launchResponse').map((e) => e.message), ['offer', 'offer-2']);
      assert.deepEqual(sink.of('sharerGone'), [{ event: 'sharerGone', socket: 'joiner-2', name: 'room', uid: 'u2' }]);
      assert.deepEqual(core.localStats(), { sockets: 1, shares: 0, joinerRoutes: 0, sharerRoutes: 0 });
    });

    it('refuses requests from a socket it does not know with internal', async () => {
      const { core } = setup();
      await rejectsWith(core.share('ghost', 'x', {}), 'internal');
    });
  });
});
