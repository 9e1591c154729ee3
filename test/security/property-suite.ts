/**
 * Property-based test of the relay (fast-check): random sequences of share,
 * unshare, launch, answer (alone and in bursts), racing first launches,
 * disconnects and waits past short lifetimes, from several clients at once,
 * against a running Topology. A model built from what clients observe
 * checks, at every step and at the end:
 *
 * - every request is acked, with success or a documented code that the
 *   model allows at that point (nothing crashes, nothing hangs);
 * - every relayed message reaches exactly one socket, the one it was routed
 *   to (a live sharer of the name, the same one for all launches of a route;
 *   the joiner of the route for an answer), and no other, in send order;
 * - a sharer's disconnect tells exactly its routed joiners (`sharer-gone`);
 * - after everyone leaves, /healthz of every node counts zero sockets,
 *   shares and routes, locally and in the registry.
 *
 * The model never guesses the server's random choices: it learns each
 * route from the first delivery and checks everything after against it.
 * @module
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import type { SignalingErrorBody } from '../../src/protocol/events.js';
import { health, type Topology, type TopologyFactory } from '../support/topology.js';
import { connect, eventually, request, sleep, type TestSocket } from '../support/util.js';

const CLIENTS = 5;
const NAMES = 3;
const UIDS = 3;
const SHORT_TTL = 250;

type Command =
  | { kind: 'share'; client: number; name: number; short: boolean }
  | { kind: 'unshare'; client: number; name: number | null }
  | { kind: 'launch'; client: number; name: number; uid: number; burst: number }
  | { kind: 'answer'; client: number; name: number; uid: number; burst: number }
  /** The sharer of the `pick`-th known route answers it (random answers mostly miss). */
  | { kind: 'reply'; pick: number; burst: number }
  | { kind: 'race'; client: number; other: number; name: number; uid: number }
  | { kind: 'disconnect'; client: number }
  | { kind: 'wait'; ms: number };

const client = fc.integer({ min: 0, max: CLIENTS - 1 });
const name = fc.integer({ min: 0, max: NAMES - 1 });
const uid = fc.integer({ min: 0, max: UIDS - 1 });
const burst = fc.oneof({ weight: 3, arbitrary: fc.constant(1) }, { weight: 1, arbitrary: fc.integer({ min: 2, max: 12 }) });

export const commandArbitrary: fc.Arbitrary<Command> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('share' as const), client, name, short: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('unshare' as const), client, name: fc.option(name, { nil: null }) }) },
  { weight: 6, arbitrary: fc.record({ kind: fc.constant('launch' as const), client, name, uid, burst }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('answer' as const), client, name, uid, burst }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('reply' as const), pick: fc.nat(), burst }) },
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constant('race' as const), client, other: fc.integer({ min: 1, max: CLIENTS - 1 }), name, uid }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('disconnect' as const), client }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('wait' as const), ms: fc.integer({ min: 20, max: 400 }) }) },
);

interface ModelShare {
  /** Short shares may expire at any moment: the model accepts both outcomes until `shareExpired` says. */
  short: boolean;
}

interface Route {
  joiner: string;
  sharer: string;
}

interface Received {
  socket: string;
  event: 'launchResponse' | 'answerResponse';
  uid?: string;
}

type Ack = { ok: true; [key: string]: unknown } | { ok: false; error: { code: string; message: string } };

/** What the runs did, summed: printed, and checked so a generator that stops exercising a path is noticed. */
export type Tally = Map<string, number>;

class Run {
  readonly #topology: Topology;
  readonly #tally: Tally;
  readonly #tag: string;
  readonly sockets: TestSocket[] = [];
  /** Model: per client slot, the names it shares. */
  readonly shares: Map<string, ModelShare>[] = [];
  /** Model: routes learned from deliveries, by route key. */
  readonly routes = new Map<string, Route>();
  /** Route keys that once had a route (an answer there may meet either error code). */
  readonly everRouted = new Set<string>();
  /** Routes that ended, by key: the registry (and, in a cluster, the other node) may take a moment to forget them. */
  readonly recentlyEnded = new Map<string, Route>();
  /** Answers the old sharer of an ended route sent before it learned the end: delivered to no one. */
  readonly mayVanish = new Set<string>();
  /** Broken expectations seen in event listeners, reported by finish(). */
  readonly violations: string[] = [];
  /** payload -> every socket that received it. */
  readonly received = new Map<string, Received[]>();
  /** Per receiving socket, payloads in arrival order. */
  readonly arrivals = new Map<string, string[]>();
  /** Payloads sent that were acked ok, with who must receive them. */
  readonly expected = new Map<string, { to: string | Set<string>; event: Received['event'] }>();
  /** `sharer-gone` bodies each socket received, and the ones the model expects. */
  readonly sharerGone = new Map<string, string[]>();
  readonly sharerGoneExpected = new Map<string, string[]>();
  #seq = 0;

  constructor(topology: Topology, tag: string, tally: Tally) {
    this.#topology = topology;
    this.#tag = tag;
    this.#tally = tally;
  }

  count(what: string, n = 1): void {
    this.#tally.set(what, (this.#tally.get(what) ?? 0) + n);
  }

  nameOf(n: number): string {
    return `${this.#tag}-n${n}`;
  }
  uidOf(u: number): string {
    return `u${u}`;
  }
  payload(): string {
    return `${this.#tag}:${this.#seq++}`;
  }

  async open(slot: number): Promise<void> {
    const socket = await connect(this.#topology.url(slot));
    const id = socket.id!;
    const record = (event: Received['event'], payload: unknown, uidValue?: string): void => {
      const key = String(payload);
      const list = this.received.get(key) ?? [];
      list.push({ socket: id, event, ...(uidValue === undefined ? {} : { uid: uidValue }) });
      this.received.set(key, list);
      const order = this.arrivals.get(id) ?? [];
      order.push(key);
      this.arrivals.set(id, order);
    };
    socket.on('launchResponse', (u, message) => record('launchResponse', message, u));
    socket.on('answerResponse', (message) => record('answerResponse', message));
    socket.on('shareExpired', (expired) => {
      const own = this.shares[slot]!;
      // Only a short share can expire during a run.
      if (own.get(expired)?.short !== true) this.violations.push(`shareExpired(${expired}) for a share that was not short`);
      this.count('shareExpired');
      own.delete(expired);
    });
    socket.on('signalingError', (body: SignalingErrorBody) => {
      if (body.code !== 'sharer-gone') return;
      this.count('sharer-gone');
      const list = this.sharerGone.get(id) ?? [];
      list.push(`${body.name}|${body.joinerUID}`);
      this.sharerGone.set(id, list);
    });
    this.sockets[slot] = socket;
    this.shares[slot] = new Map();
  }

  /** Live (possibly expiring) sharers of `n`, by socket id, and whether any is sure to be live. */
  sharersOf(n: string): { all: Set<string>; sure: boolean } {
    const all = new Set<string>();
    let sure = false;
    this.shares.forEach((own, slot) => {
      const share = own.get(n);
      if (!share) return;
      all.add(this.sockets[slot]!.id!);
      if (!share.short) sure = true;
    });
    return { all, sure };
  }

  async waitDelivered(payloads: string[]): Promise<void> {
    await eventually(() => payloads.every((p) => this.received.has(p)), 5000, `delivery of ${payloads.length} message(s)`);
  }

  async settle(): Promise<void> {
    const alive = this.sockets.filter((s) => s.connected).length;
    await eventually(
      async () => (await health(this.#topology)).reduce((sum, h) => sum + h.sockets, 0) === alive,
      10_000,
      `/healthz to count ${alive} sockets`,
    );
  }

  async share(c: Extract<Command, { kind: 'share' }>): Promise<void> {
    const n = this.nameOf(c.name);
    const options = c.short ? { ttl: SHORT_TTL } : {};
    const ack = await request<Ack>(this.sockets[c.client]!, 'share', n, options);
    assert.equal(ack.ok, true, `share: ${JSON.stringify(ack)}`);
    this.shares[c.client]!.set(n, { short: c.short });
  }

  async unshare(c: Extract<Command, { kind: 'unshare' }>): Promise<void> {
    const own = this.shares[c.client]!;
    const n = c.name === null ? undefined : this.nameOf(c.name);
    const ack = await request<Ack>(this.sockets[c.client]!, 'unshare', ...(n === undefined ? [] : [n]));
    assert.equal(ack.ok, true, `unshare: ${JSON.stringify(ack)}`);
    const names = [...(ack as unknown as { names: string[] }).names].sort();
    const candidates = n === undefined ? [...own.keys()] : own.has(n) ? [n] : [];
    // Every sure share must be in the answer; a short one may have just expired.
    for (const m of candidates) if (!own.get(m)!.short) assert.ok(names.includes(m), `unshare must end ${m}`);
    for (const m of names) assert.ok(candidates.includes(m), `unshare ended ${m}, which it did not share`);
    for (const m of candidates) own.delete(m);
  }

  async launch(c: Extract<Command, { kind: 'launch' }>): Promise<void> {
    const joiner = this.sockets[c.client]!;
    const n = this.nameOf(c.name);
    const u = this.uidOf(c.uid);
    const key = `${n}|${u}`;
    const route = this.routes.get(key);
    const payloads = Array.from({ length: c.burst }, () => this.payload());
    // The sharers as the launch leaves: a short share's shareExpired may
    // overtake the ack on its way (another socket), after the share took the launch.
    const sharers = this.sharersOf(n);
    const acks = await Promise.all(payloads.map((p) => request<Ack>(joiner, 'launch', n, u, p)));
    const outcome = acks[0]!.ok ? 'ok' : acks[0]!.error.code;
    for (const ack of acks) assert.equal(ack.ok ? 'ok' : ack.error.code, outcome, 'every launch of a burst ends alike');
    this.count(`launch ${outcome}`, acks.length);
    if (route) {
      if (route.joiner === joiner.id) {
        assert.equal(outcome, 'ok', 'a routed joiner may always launch again');
        return this.#delivered(payloads, route.sharer, 'launchResponse', u);
      }
      assert.equal(outcome, 'uid-taken', 'a uid routed for another socket is taken');
      return;
    }
    if (outcome === 'uid-taken') {
      assert.ok(this.recentlyEnded.has(key), `uid-taken for ${key}, which has no route`);
      return;
    }
    if (outcome === 'no-sharer') {
      assert.ok(!sharers.sure, `no-sharer while ${n} is surely shared`);
      return;
    }
    assert.equal(outcome, 'ok', `launch: unexpected ${outcome}`);
    assert.ok(sharers.all.size > 0, `launch to ${n} succeeded with no sharer`);
    await this.waitDelivered(payloads);
    const receiver = this.received.get(payloads[0]!)![0]!.socket;
    assert.ok(sharers.all.has(receiver), 'routed to a socket that does not share the name');
    this.routes.set(key, { joiner: joiner.id!, sharer: receiver });
    this.everRouted.add(key);
    this.recentlyEnded.delete(key);
    await this.#delivered(payloads, receiver, 'launchResponse', u);
  }

  async answer(c: Extract<Command, { kind: 'answer' }>): Promise<void> {
    const sharer = this.sockets[c.client]!;
    const n = this.nameOf(c.name);
    const u = this.uidOf(c.uid);
    const key = `${n}|${u}`;
    const route = this.routes.get(key);
    const payloads = Array.from({ length: c.burst }, () => this.payload());
    const acks = await Promise.all(payloads.map((p) => request<Ack>(sharer, 'answer', n, u, p)));
    const outcome = acks[0]!.ok ? 'ok' : acks[0]!.error.code;
    for (const ack of acks) assert.equal(ack.ok ? 'ok' : ack.error.code, outcome, 'every answer of a burst ends alike');
    this.count(`answer ${outcome}`, acks.length);
    if (route && route.sharer === sharer.id) {
      assert.equal(outcome, 'ok', 'the routed sharer may always answer');
      return this.#delivered(payloads, route.joiner, 'answerResponse');
    }
    if (outcome === 'ok' && this.recentlyEnded.get(key)?.sharer === sharer.id) {
      for (const p of payloads) this.mayVanish.add(p);
      return;
    }
    assert.notEqual(outcome, 'ok', 'only the routed sharer may answer');
    if (route) assert.equal(outcome, 'not-sharer');
    else if (!this.everRouted.has(key)) assert.equal(outcome, 'unknown-joiner');
    else assert.ok(['not-sharer', 'unknown-joiner'].includes(outcome), outcome);
  }

  async race(c: Extract<Command, { kind: 'race' }>): Promise<void> {
    const n = this.nameOf(c.name);
    const u = this.uidOf(c.uid);
    const key = `${n}|${u}`;
    const other = (c.client + c.other) % CLIENTS;
    if (this.routes.has(key) || this.recentlyEnded.has(key)) {
      return this.launch({ kind: 'launch', client: c.client, name: c.name, uid: c.uid, burst: 1 });
    }
    const sockets = [this.sockets[c.client]!, this.sockets[other]!];
    const payloads = [this.payload(), this.payload()];
    const sharers = this.sharersOf(n); // as the launches leave, as in launch()
    const acks = await Promise.all(sockets.map((s, i) => request<Ack>(s, 'launch', n, u, payloads[i])));
    const outcomes = acks.map((a) => (a.ok ? 'ok' : a.error.code));
    this.count(`race ${[...outcomes].sort().join('/')}`);
    if (outcomes.every((o) => o === 'no-sharer')) {
      assert.ok(!sharers.sure, `no-sharer while ${n} is surely shared`);
      return;
    }
    assert.deepEqual([...outcomes].sort(), ['ok', 'uid-taken'], 'exactly one of two racing joiners gets the uid');
    const winner = outcomes.indexOf('ok');
    const payload = payloads[winner]!;
    await this.waitDelivered([payload]);
    const receiver = this.received.get(payload)![0]!.socket;
    assert.ok(sharers.all.has(receiver), 'routed to a socket that does not share the name');
    this.routes.set(key, { joiner: sockets[winner]!.id!, sharer: receiver });
    this.everRouted.add(key);
    await this.#delivered([payload], receiver, 'launchResponse', u);
  }

  async disconnect(c: Extract<Command, { kind: 'disconnect' }>): Promise<void> {
    const socket = this.sockets[c.client]!;
    const id = socket.id!;
    for (const [key, route] of this.routes) {
      if (route.sharer === id && route.joiner !== id) {
        const list = this.sharerGoneExpected.get(route.joiner) ?? [];
        list.push(key);
        this.sharerGoneExpected.set(route.joiner, list);
      }
      if (route.sharer === id || route.joiner === id) {
        this.routes.delete(key);
        this.recentlyEnded.set(key, route);
      }
    }
    this.count('disconnect');
    socket.disconnect();
    await this.open(c.client);
    await this.settle();
    await eventually(() => this.#sharerGoneDone(), 5000, 'sharer-gone to every joiner of the departed sharer');
  }

  #sharerGoneDone(): boolean {
    for (const [joiner, keys] of this.sharerGoneExpected) {
      const got = this.sharerGone.get(joiner) ?? [];
      if (keys.some((k) => !got.includes(k))) return false;
    }
    return true;
  }

  async #delivered(payloads: string[], to: string, event: Received['event'], u?: string): Promise<void> {
    for (const p of payloads) this.expected.set(p, { to, event });
    this.count(`${event} delivered`, payloads.length);
    await this.waitDelivered(payloads);
    for (const p of payloads) {
      const got = this.received.get(p)!;
      assert.equal(got[0]!.socket, to, `${event} ${p} reached the wrong socket`);
      assert.equal(got[0]!.event, event);
      if (u !== undefined) assert.equal(got[0]!.uid, u);
    }
    // In order: the payloads appear in the receiver's arrivals as sent.
    const order = (this.arrivals.get(to) ?? []).filter((p) => payloads.includes(p));
    assert.deepEqual(order, payloads, `${event}s arrived out of order`);
  }

  async run(commands: Command[]): Promise<void> {
    for (const command of commands) {
      switch (command.kind) {
        case 'share':
          await this.share(command);
          break;
        case 'unshare':
          await this.unshare(command);
          break;
        case 'launch':
          await this.launch(command);
          break;
        case 'answer':
          await this.answer(command);
          break;
        case 'reply': {
          const routed = [...this.routes.entries()];
          if (routed.length === 0) break;
          const [key, route] = routed[command.pick % routed.length]!;
          const [n, u] = key.split('|') as [string, string];
          await this.answer({
            kind: 'answer',
            client: this.sockets.findIndex((s) => s.id === route.sharer),
            name: Number(n.slice(n.lastIndexOf('-n') + 2)),
            uid: Number(u.slice(1)),
            burst: command.burst,
          });
          break;
        }
        case 'race':
          await this.race(command);
          break;
        case 'disconnect':
          await this.disconnect(command);
          break;
        case 'wait':
          await sleep(command.ms);
          break;
      }
    }
  }

  /** Everyone leaves, and the topology gets back to zero, as far as it can: before the next run, after a failure. */
  async teardown(): Promise<void> {
    for (const socket of this.sockets) socket.disconnect();
    await eventually(async () => (await health(this.#topology)).every((h) => h.sockets === 0), 15_000, 'sockets gone').catch(() => undefined);
  }

  /** Everyone leaves; then nothing may be left anywhere, and nothing was delivered twice or astray. */
  async finish(): Promise<void> {
    assert.deepEqual(this.violations, []);
    for (const socket of this.sockets) socket.disconnect();
    await eventually(
      async () =>
        (await health(this.#topology)).every(
          (h) => h.sockets === 0 && h.shares === 0 && h.routes === 0 && h.registry.shares === 0 && h.registry.routes === 0,
        ),
      15_000,
      'every count of /healthz back to zero',
    );
    for (const [payload, receivers] of this.received) {
      assert.equal(receivers.length, 1, `${payload} was delivered ${receivers.length} times`);
      assert.ok(this.expected.has(payload), `${payload} was delivered though it was never acked as relayed`);
    }
    for (const payload of this.expected.keys()) assert.ok(this.received.has(payload), `${payload} was never delivered`);
    for (const payload of this.mayVanish) assert.ok(!this.received.has(payload), `${payload} reached a joiner that had left`);
    for (const [joiner, got] of this.sharerGone) {
      const wanted = this.sharerGoneExpected.get(joiner) ?? [];
      for (const key of got) assert.ok(wanted.includes(key), `unexpected sharer-gone ${key}`);
    }
  }
}

export interface PropertySuiteOptions {
  /** Random command sequences tried. @default 25 */
  numRuns?: number;
  /** Longest sequence. @default 60 */
  maxCommands?: number;
}

export function propertySuite(label: string, makeTopology: TopologyFactory, options: PropertySuiteOptions = {}): void {
  describe(`relay properties (${label})`, () => {
    let topology: Topology;
    before(async () => {
      topology = await makeTopology();
    });
    after(() => topology.close());

    it('routes every message to exactly its peer, in order, and leaves nothing behind', async (t) => {
      let runs = 0;
      const tally: Tally = new Map();
      await fc.assert(
        fc.asyncProperty(fc.array(commandArbitrary, { minLength: 1, maxLength: options.maxCommands ?? 60, size: 'medium' }), async (commands) => {
          const run = new Run(topology, `r${runs++}`, tally);
          try {
            for (let slot = 0; slot < CLIENTS; slot++) await run.open(slot);
            await run.run(commands);
          } catch (error) {
            await run.teardown();
            throw error;
          }
          await run.finish();
        }),
        {
          numRuns: options.numRuns ?? 25,
          // The failing step's own message in the report: CI shows the report, not its `cause`.
          includeErrorInReport: true,
          // Shrinking reruns the sequence thousands of times, past the test's
          // timeout, and a failure that depends on timing seldom shrinks; the
          // report's seed and path replay the failure (FC_SEED, FC_PATH), and
          // FC_SHRINK=1 shrinks it.
          endOnFailure: process.env['FC_SHRINK'] !== '1',
          ...(process.env['FC_PATH'] ? { path: process.env['FC_PATH'] } : {}),
          ...(process.env['FC_SEED'] ? { seed: Number(process.env['FC_SEED']) } : {}),
        },
      );
      t.diagnostic(`runs ${runs}: ${[...tally].sort().map(([k, v]) => `${k} ${v}`).join(', ')}`);
      // The generator must keep reaching every path the invariants speak of.
      for (const what of ['launchResponse delivered', 'answerResponse delivered', 'launch no-sharer', 'launch uid-taken', 'answer not-sharer', 'answer unknown-joiner', 'sharer-gone', 'shareExpired', 'race ok/uid-taken']) {
        assert.ok((tally.get(what) ?? 0) > 0, `no run exercised: ${what}`);
      }
    });
  });
}
