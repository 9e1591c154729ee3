/**
 * The signaling core: share, unshare, launch, answer, expiry and disconnect
 * cleanup. It decides every error code, once. It knows nothing of socket.io
 * or Redis: it talks to a Registry (shared state), a Delivery (messages to
 * sockets anywhere) and a SocketSink (events to this node's sockets).
 *
 * Per socket it keeps only what the socket's own node must know: the names
 * it shares (with their expiry timers) and the routes it takes part in, so
 * repeated launches and answers are relayed without asking the registry.
 * @module
 */
import { randomBytes } from 'node:crypto';
import type { Clock, TimerHandle } from './clock.js';
import type { Delivery } from './delivery.js';
import type { Registry, RegistryCounts, RegistrySnapshot } from './registry.js';
import { shareRefusal, type SharePolicy } from './share-policy.js';
import { SignalingError } from './signaling-error.js';
import { RouteBook, type HeldRoute, type RouteHolder } from './route-book.js';
import type { DeliveryMessage, JoinerUID, RouteOutcome, ShareName, SignalMessage, SocketId } from './types.js';

/** Events the core asks the protocol endpoint to send to one of its sockets. */
export interface SocketSink {
  launchResponse(socket: SocketId, uid: JoinerUID, message: SignalMessage): void;
  answerResponse(socket: SocketId, message: SignalMessage): void;
  shareExpired(socket: SocketId, name: ShareName): void;
  sharerGone(socket: SocketId, name: ShareName, uid: JoinerUID): void;
}

/** Hooks for metrics; the core never depends on a metrics library. */
export interface CoreObserver {
  relayed(kind: 'launch' | 'answer', latencyMs: number): void;
  /** A registry update made in the background failed (never a client's fault). */
  backgroundFailed(operation: string, error: unknown): void;
}

export interface CoreLimits {
  /** Lifetime of a share that asks for none, in ms. */
  defaultTtl: number;
  /** Longest lifetime granted, in ms; longer requests are capped. */
  maxTtl: number;
  /** Distinct names one socket may share at once. */
  maxSharesPerSocket: number;
  /** Routes one joiner socket may hold at once; the oldest is dropped past it. */
  maxRoutesPerSocket: number;
  /**
   * Joiners one share admits over its life when it asks for no `maxJoins`
   * (and the most it may ask for).
   * @default unlimited
   */
  maxJoinsPerShare?: number;
  /**
   * Launches of one socket waiting for the registry at once; more are
   * refused with `rate-limited` instead of queueing without bound.
   * @default unlimited
   */
  maxPendingPerSocket?: number;
}

export interface CoreOptions {
  registry: Registry;
  delivery: Delivery;
  sink: SocketSink;
  clock: Clock;
  limits: CoreLimits;
  observer?: CoreObserver;
}

export interface ShareGrant {
  name: ShareName;
  expiresAt: number;
  ttl: number;
}

export interface ShareRequest {
  ttl?: number | undefined;
  maxJoins?: number | undefined;
}

export interface CoreStats {
  sockets: number;
  /** Names shared by this node's sockets. */
  shares: number;
  /** Routes this node's sockets hold, as joiners and as sharers. */
  joinerRoutes: number;
  sharerRoutes: number;
}

interface LocalShare {
  expiresAt: number;
  timer: TimerHandle;
  maxJoins: number | undefined;
  /** Joiners whose first launch reached this sharer: what a restore re-registers. */
  joins: number;
}

/**
 * The map every socket reads until it stores something: most sockets never
 * share or launch, and four empty Maps cost ~0.9 KB per idle connection.
 * Writing to it is a bug, so it throws.
 */
const none: Map<never, never> = new (class extends Map<never, never> {
  override set(): never {
    throw new Error('write to the shared empty map: use LocalSocket.ownShares()');
  }
})();

class LocalSocket implements RouteHolder {
  shares: Map<ShareName, LocalShare> = none;
  // Its routes, kept in the core's RouteBook.
  joinerOldest: HeldRoute | undefined = undefined;
  joinerNewest: HeldRoute | undefined = undefined;
  joinerCount = 0;
  sharerOldest: HeldRoute | undefined = undefined;
  sharerNewest: HeldRoute | undefined = undefined;
  sharerCount = 0;
  sharerNames: Map<ShareName, number> | undefined = undefined;
  /** Launches waiting for the registry; later launches queue behind them. */
  routing = 0;
  queue: Promise<unknown> = done;
  closed = false;
  constructor(
    readonly id: SocketId,
    readonly policy: SharePolicy | undefined,
  ) {}

  /** Its shares, to write to: created on the first write. */
  ownShares(): Map<ShareName, LocalShare> {
    if (this.shares === none) this.shares = new Map();
    return this.shares;
  }
}

/** 144 random bits, URL-safe: links cannot be guessed or enumerated. */
export const mintShareName = (): ShareName => randomBytes(18).toString('base64url');

const done: Promise<void> = Promise.resolve();

/**
 * Stands in the socket table for every socket attached without a policy
 * that has not shared, launched or answered yet (most connections, most of
 * the time): such a socket costs a table entry, not a LocalSocket. Its maps
 * are the shared empty ones, so walks over the table pass it by; it is never
 * written to: `#socket` makes a socket's own LocalSocket first.
 */
const IDLE = new LocalSocket('', undefined);

export class SignalingCore {
  readonly #registry: Registry;
  readonly #delivery: Delivery;
  readonly #sink: SocketSink;
  readonly #clock: Clock;
  readonly #limits: CoreLimits;
  readonly #observer: CoreObserver | undefined;
  readonly #sockets = new Map<SocketId, LocalSocket>();
  /** Every route this node's sockets hold, one record for both ends when both are here. */
  readonly #routes = new RouteBook();
  /** Detaches still telling peers and the registry: `detachAll` waits for them too. */
  readonly #detaching = new Set<Promise<void>>();
  /**
   * Per socket, until its sharer has been told: expiries whose removal
   * from the registry is still under way. An unshare waits for them, so a
   * client never hears shareExpired for a name after its unshare's ack.
   */
  readonly #expiring = new Map<LocalSocket, Promise<void>>();

  constructor(options: CoreOptions) {
    this.#registry = options.registry;
    this.#delivery = options.delivery;
    this.#sink = options.sink;
    this.#clock = options.clock;
    this.#limits = options.limits;
    this.#observer = options.observer;
    this.#delivery.onMessage((target, message) => this.#receive(target, message));
  }

  get limits(): Readonly<CoreLimits> {
    return this.#limits;
  }

  /** Starts serving a socket; `policy` limits what it may share (anything when absent). */
  attach(socket: SocketId, policy?: SharePolicy): void {
    this.#sockets.set(socket, policy === undefined ? IDLE : new LocalSocket(socket, policy));
  }

  /** Forgets a disconnected socket: its shares end, its peers are told. */
  detach(socketId: SocketId): Promise<void> {
    const work = this.#detach(socketId);
    this.#detaching.add(work);
    const settled = (): boolean => this.#detaching.delete(work);
    work.then(settled, settled);
    return work;
  }

  async #detach(socketId: SocketId): Promise<void> {
    const socket = this.#sockets.get(socketId);
    if (!socket) return;
    this.#sockets.delete(socketId);
    if (socket === IDLE) return;
    socket.closed = true;
    // Most sockets never shared nor launched: nothing to undo, nobody to tell.
    if (socket.shares === none && socket.sharerOldest === undefined && socket.joinerOldest === undefined) return;
    const pending: (void | Promise<void>)[] = [];
    const unshared: Promise<void>[] = [];
    for (const [name, share] of socket.shares) {
      share.timer.cancel();
      unshared.push(this.#registry.removeShare(name, socketId));
    }
    // Joiners told sharer-gone launch again at once: the registry must no
    // longer offer this sharer by then (in cluster mode the two travel apart).
    await Promise.allSettled(unshared);
    pending.push(...unshared);
    // Each end is dropped before its peer is told, so a peer on this node
    // that drops its own end frees the record.
    this.#routes.forEachSharerEnd(socket, (route) => {
      const { name, uid, joiner } = route;
      this.#routes.dropSharerEnd(route);
      this.#delivery.send(joiner, { kind: 'sharer-gone', name, uid, sharer: socketId });
    });
    this.#routes.forEachJoinerEnd(socket, (route) => {
      pending.push(this.#registry.removeRoute(route.name, route.uid, socketId));
      this.#leaveRoute(socket, route);
    });
    await Promise.all(pending);
  }

  async share(socketId: SocketId, requested: ShareName | undefined, request: ShareRequest): Promise<ShareGrant> {
    const socket = this.#socket(socketId);
    const policy = socket.policy;
    if (policy) {
      const refusal = shareRefusal(policy, requested, this.#clock.now());
      if (refusal !== undefined) throw new SignalingError('unauthorized', refusal);
    }
    const name = requested ?? (policy?.allowed ? (policy.namePrefix ?? '') : '') + mintShareName();
    const previous = socket.shares.get(name);
    if (!previous && socket.shares.size >= this.#limits.maxSharesPerSocket) {
      throw new SignalingError('bad-request', `a socket may share at most ${this.#limits.maxSharesPerSocket} names`);
    }
    const ttl = Math.min(
      request.ttl ?? this.#limits.defaultTtl,
      this.#limits.maxTtl,
      (policy?.allowed && policy.maxTtl) || Infinity,
    );
    const joinCap = this.#limits.maxJoinsPerShare;
    const maxJoins = joinCap === undefined ? request.maxJoins : Math.min(request.maxJoins ?? joinCap, joinCap);
    const expiresAt = Math.round(this.#clock.now() + ttl);
    previous?.timer.cancel();
    const share: LocalShare = {
      expiresAt,
      timer: this.#clock.schedule(ttl, () => this.#expire(socket, name, share)),
      maxJoins,
      joins: previous?.joins ?? 0,
    };
    // Local state first, so an unshare sent right after this share sees it.
    socket.ownShares().set(name, share);
    try {
      await this.#registry.addShare(name, socketId, { expiresAt, maxJoins });
    } catch (error) {
      // The registry may be away (cluster mode): the client is told the share
      // failed, so it must not live on here, nor in the registry if it got there.
      if (socket.shares.get(name) === share) this.#rollbackShare(socket, name, share, previous);
      throw error;
    }
    return { name, expiresAt, ttl };
  }

  /** Stops sharing `name`, or every name of the socket; returns what stopped. */
  async unshare(socketId: SocketId, name?: ShareName): Promise<ShareName[]> {
    const socket = this.#socket(socketId);
    const expiring = this.#expiring.get(socket);
    if (expiring !== undefined) await expiring;
    const names = name === undefined ? [...socket.shares.keys()] : socket.shares.has(name) ? [name] : [];
    await Promise.all(names.map((n) => this.#endShare(socket, n)));
    return names;
  }

  /**
   * Relays a joiner's message to its sharer: the first launch of (name, uid)
   * is routed by the registry, later ones follow the same route, in order.
   */
  launch(socketId: SocketId, name: ShareName, uid: JoinerUID, message: SignalMessage): Promise<void> {
    try {
      return this.relayLaunch(socketId, name, uid, message) ?? done;
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /**
   * `launch` for the protocol endpoint's hot path: relays at once and
   * returns undefined when the route is known or the registry answers at
   * once (in memory), so a launch costs no Promise; returns a Promise when
   * it must wait for the registry. Throws a SignalingError when it fails at
   * once.
   */
  relayLaunch(socketId: SocketId, name: ShareName, uid: JoinerUID, message: SignalMessage): Promise<void> | undefined {
    const socket = this.#socket(socketId);
    const pendingCap = this.#limits.maxPendingPerSocket;
    let routing: Promise<RouteOutcome> | undefined;
    let evict: HeldRoute | undefined;
    // With nothing waiting for the registry, nothing can overtake this launch.
    if (socket.routing === 0) {
      let route = this.#routes.joinerEnd(socket, name, uid);
      if (!route) {
        if (pendingCap !== undefined && pendingCap <= 0) throw this.#tooManyPending(pendingCap);
        evict = this.#evictionFor(socket);
        const outcome = this.#registry.route(name, uid, socketId, this.#clock.now(), evict);
        if (outcome instanceof Promise) routing = outcome;
        else route = this.#adoptRoute(socket, name, uid, outcome, evict);
      }
      if (route) {
        this.#sendLaunch(socketId, route, message);
        return undefined;
      }
    } else if (pendingCap !== undefined && socket.routing >= pendingCap) {
      throw this.#tooManyPending(pendingCap);
    }
    socket.routing++;
    if (routing) {
      // Nothing waits ahead of it: the launch goes when the registry answers,
      // at the cost of one reaction instead of a turn through the queue.
      const result = routing.then(
        (outcome) => {
          socket.routing--;
          return this.#launchRouted(socket, name, uid, message, outcome, evict);
        },
        (error: unknown) => {
          socket.routing--;
          throw error;
        },
      );
      socket.queue = result.catch(() => undefined);
      return result;
    }
    const run = async (): Promise<void> => {
      try {
        await this.#routeAndLaunch(socket, name, uid, message, routing, evict);
      } finally {
        socket.routing--;
      }
    };
    const result = socket.queue.then(run, run);
    socket.queue = result.catch(() => undefined);
    return result;
  }

  /**
   * Hands the delivery's waiting messages over at once: the endpoint calls
   * it before it acks a relay, so the ack never overtakes the relay (in
   * cluster mode, PUBLISHes otherwise wait for the end of the event-loop turn).
   */
  flushSends(): void {
    this.#delivery.flush?.();
  }

  /** Relays a sharer's message to a joiner routed to it. */
  answer(socketId: SocketId, name: ShareName | undefined, uid: JoinerUID, message: SignalMessage): Promise<void> {
    try {
      return this.relayAnswer(socketId, name, uid, message) ?? done;
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /** `answer` for the hot path, as `relayLaunch`: undefined when relayed at once. */
  relayAnswer(socketId: SocketId, name: ShareName | undefined, uid: JoinerUID, message: SignalMessage): Promise<void> | undefined {
    const socket = this.#socket(socketId);
    const route = this.#sharerRoute(socket, name, uid);
    if (!route) return this.#unroutedAnswer(socket, name, uid);
    const joiner = route.joinerEnd as LocalSocket | undefined;
    if (joiner !== undefined) {
      // The joiner is a socket of this node (both ends on one record): the
      // delivery would hand the answer over within send, as done here,
      // without a message or a lookup. A joiner that is detaching gets nothing.
      if (!joiner.closed) {
        this.#observer?.relayed('answer', 0);
        this.#sink.answerResponse(joiner.id, message);
      }
      return undefined;
    }
    this.#ensureReachable(route.joiner);
    const sentAt = this.#clock.now();
    this.#delivery.send(route.joiner, { kind: 'answer', name: route.name, uid, sharer: socketId, message, sentAt });
    return undefined;
  }

  /** Not ours: says whether the joiner exists at all (only to someone who already knows both the name and the uid). */
  async #unroutedAnswer(socket: LocalSocket, name: ShareName | undefined, uid: JoinerUID): Promise<void> {
    const names = name === undefined ? [...socket.shares.keys()] : [name];
    for (const n of names) {
      if (await this.#registry.lookupRoute(n, uid)) throw new SignalingError('not-sharer');
    }
    throw new SignalingError('unknown-joiner');
  }

  /**
   * Reports that every socket for which `isGone` holds has vanished without
   * a word (in cluster mode: its node died). Joiners routed to such a sharer
   * are told `sharer-gone`; routes of such joiners are forgotten.
   */
  peersGone(isGone: (socket: SocketId) => boolean): void {
    for (const socket of this.#sockets.values()) {
      this.#routes.forEachJoinerEnd(socket, (route) => {
        if (!isGone(route.sharer)) return;
        const { name, uid } = route;
        this.#routes.dropJoinerEnd(route);
        this.#background('removeRoute', this.#registry.removeRoute(name, uid, socket.id));
        this.#sink.sharerGone(socket.id, name, uid);
      });
      this.#routes.forEachSharerEnd(socket, (route) => {
        if (isGone(route.joiner)) this.#routes.dropSharerEnd(route);
      });
    }
  }

  /** What this node's sockets hold, for a registry that lost it. */
  snapshot(): RegistrySnapshot {
    const snapshot: RegistrySnapshot = { shares: [], routes: [] };
    for (const socket of this.#sockets.values()) {
      for (const [name, share] of socket.shares) {
        snapshot.shares.push({ name, sharer: socket.id, terms: { expiresAt: share.expiresAt, maxJoins: share.maxJoins }, joins: share.joins });
      }
      this.#routes.forEachJoinerEnd(socket, (route) => {
        snapshot.routes.push({ name: route.name, uid: route.uid, route: { joiner: socket.id, sharer: route.sharer } });
      });
    }
    return snapshot;
  }

  async stats(): Promise<CoreStats & { registry: RegistryCounts }> {
    return { ...this.localStats(), registry: await this.#registry.counts() };
  }

  localStats(): CoreStats {
    let shares = 0;
    let joinerRoutes = 0;
    let sharerRoutes = 0;
    for (const socket of this.#sockets.values()) {
      shares += socket.shares.size;
      joinerRoutes += socket.joinerCount;
      sharerRoutes += socket.sharerCount;
    }
    return { sockets: this.#sockets.size, shares, joinerRoutes, sharerRoutes };
  }

  /**
   * Detaches every socket, as at shutdown, and waits for detaches already
   * under way (a socket whose connection closed a moment ago may still be
   * telling its peers): whoever closes the registry and delivery next must
   * not cut them short.
   */
  async detachAll(): Promise<void> {
    const mine = [...this.#sockets.keys()].map((id) => this.detach(id));
    await Promise.allSettled([...this.#detaching]);
    // Fails as before when one of its own detaches failed.
    await Promise.all(mine);
  }

  #socket(socketId: SocketId): LocalSocket {
    const socket = this.#sockets.get(socketId);
    if (!socket) throw new SignalingError('internal', 'socket is not attached');
    if (socket !== IDLE) return socket;
    const own = new LocalSocket(socketId, undefined);
    this.#sockets.set(socketId, own);
    return own;
  }

  /** `routing`: the registry's answer when it was already asked (with `evict`). */
  async #routeAndLaunch(
    socket: LocalSocket,
    name: ShareName,
    uid: JoinerUID,
    message: SignalMessage,
    routing?: Promise<RouteOutcome>,
    evict?: HeldRoute,
  ): Promise<void> {
    let route = this.#routes.joinerEnd(socket, name, uid);
    if (!route) {
      if (!routing) evict = this.#evictionFor(socket);
      const outcome = await (routing ?? this.#registry.route(name, uid, socket.id, this.#clock.now(), evict));
      return this.#launchRouted(socket, name, uid, message, outcome, evict);
    }
    this.#sendLaunch(socket.id, route, message);
  }

  /** Takes the registry's answer to a launch and relays it, or undoes the route if the joiner left meanwhile. */
  #launchRouted(
    socket: LocalSocket,
    name: ShareName,
    uid: JoinerUID,
    message: SignalMessage,
    outcome: RouteOutcome,
    evict: HeldRoute | undefined,
  ): Promise<void> | undefined {
    if (socket.closed) {
      // Disconnected while the registry answered: undo what it recorded.
      return outcome.ok ? Promise.resolve(this.#registry.removeRoute(name, uid, socket.id)) : undefined;
    }
    this.#sendLaunch(socket.id, this.#adoptRoute(socket, name, uid, outcome, evict), message);
    return undefined;
  }

  #tooManyPending(cap: number): SignalingError {
    return new SignalingError('rate-limited', `at most ${cap} launches may wait for routing at once`);
  }

  /**
   * The route a new one would push past the cap (the oldest), for the
   * registry to remove in the same call that makes the new one.
   */
  #evictionFor(socket: LocalSocket): HeldRoute | undefined {
    if (socket.joinerCount < this.#limits.maxRoutesPerSocket) return undefined;
    return socket.joinerOldest;
  }

  /**
   * Records the route the registry gave a joiner (throws its refusal).
   * `evict`: the route the registry was asked to remove along with it.
   */
  #adoptRoute(socket: LocalSocket, name: ShareName, uid: JoinerUID, outcome: RouteOutcome, evict?: HeldRoute): HeldRoute {
    if (!outcome.ok) throw new SignalingError(outcome.code);
    // The route the registry removed along with this call, if this socket
    // still holds it: decided before a record is taken, because one that
    // went while the registry answered may have been reused (never for
    // this socket's joiner end: its launches wait for this one).
    const removed = outcome.evicted === true && evict?.joinerEnd === socket ? evict : undefined;
    const route = this.#routes.addJoinerEnd(socket, name, uid, outcome.sharer);
    if (socket.joinerCount > this.#limits.maxRoutesPerSocket) {
      this.#evictOldestRoute(socket, removed);
    } else if (removed !== undefined) {
      // A route went while the registry answered, leaving room, but the
      // registry already removed this one: drop it here too, so both agree.
      this.#evictRoute(socket, removed, true);
    }
    return route;
  }

  #sendLaunch(joiner: SocketId, route: HeldRoute, message: SignalMessage): void {
    const sharer = route.sharerEnd as LocalSocket | undefined;
    if (sharer !== undefined) {
      // A later launch on a route whose sharer is a socket of this node
      // (see relayAnswer): what #receive would do with it.
      if (!sharer.closed) {
        this.#routes.use(route);
        this.#observer?.relayed('launch', 0);
        this.#sink.launchResponse(sharer.id, route.uid, message);
      }
      return;
    }
    this.#ensureReachable(route.sharer);
    const sentAt = this.#clock.now();
    this.#delivery.send(route.sharer, { kind: 'launch', name: route.name, uid: route.uid, joiner, message, sentAt });
  }

  /** `removed`: a route the registry already removed (with the route call). */
  #evictOldestRoute(socket: LocalSocket, removed?: HeldRoute): void {
    const oldest = socket.joinerOldest!;
    this.#evictRoute(socket, oldest, oldest === removed);
  }

  #evictRoute(socket: LocalSocket, route: HeldRoute, registryDone: boolean): void {
    const { name, uid } = route;
    this.#leaveRoute(socket, route);
    if (!registryDone) this.#background('removeRoute', this.#registry.removeRoute(name, uid, socket.id));
  }

  /**
   * Drops a joiner's end of a route and tells its sharer, which forgets its
   * own end: at once when that end is on the same record (a socket of this
   * node, which the delivery would reach within send), else by delivery.
   */
  #leaveRoute(socket: LocalSocket, route: HeldRoute): void {
    if (route.sharerEnd !== undefined) {
      this.#routes.dropSharerEnd(route);
      this.#routes.dropJoinerEnd(route);
      return;
    }
    const { name, uid, sharer } = route;
    // The record goes with the joiner's end: read before.
    this.#routes.dropJoinerEnd(route);
    this.#delivery.send(sharer, { kind: 'joiner-gone', name, uid, joiner: socket.id });
  }

  #sharerRoute(socket: LocalSocket, name: ShareName | undefined, uid: JoinerUID): HeldRoute | undefined {
    return name === undefined ? this.#routes.latestSharerEnd(socket, uid) : this.#routes.sharerEnd(socket, name, uid);
  }

  async #endShare(socket: LocalSocket, name: ShareName): Promise<void> {
    const share = socket.shares.get(name);
    if (!share) return;
    share.timer.cancel();
    socket.shares.delete(name);
    await this.#registry.removeShare(name, socket.id);
  }

  #expire(socket: LocalSocket, name: ShareName, share: LocalShare): void {
    if (socket.closed || socket.shares.get(name) !== share) return;
    socket.shares.delete(name);
    // The sharer hears of it once the registry has forgotten the share, so
    // no first launch reaches it after that: another node, whose clock may
    // run behind this one's, would route to the share until its removal.
    // A name shared again meanwhile is not the one that expired.
    const tell = (): void => {
      if (!socket.closed && !socket.shares.has(name)) this.#sink.shareExpired(socket.id, name);
    };
    const told = this.#registry.removeShare(name, socket.id).then(tell, (error: unknown) => {
      this.#observer?.backgroundFailed('removeShare', error);
      tell();
    });
    const earlier = this.#expiring.get(socket);
    const all = earlier === undefined ? told : earlier.then(() => told);
    this.#expiring.set(socket, all);
    void all.then(() => {
      if (this.#expiring.get(socket) === all) this.#expiring.delete(socket);
    });
  }

  #rollbackShare(socket: LocalSocket, name: ShareName, share: LocalShare, previous: LocalShare | undefined): void {
    share.timer.cancel();
    if (previous && previous.expiresAt > this.#clock.now()) {
      // A failed renewal leaves the share as it was.
      const restored: LocalShare = {
        ...previous,
        timer: this.#clock.schedule(previous.expiresAt - this.#clock.now(), () => this.#expire(socket, name, restored)),
      };
      socket.ownShares().set(name, restored);
      return;
    }
    socket.shares.delete(name);
    this.#background('removeShare', this.#registry.removeShare(name, socket.id));
  }

  /** A request whose message would be lost fails instead (cluster link down). */
  #ensureReachable(peer: SocketId): void {
    if (this.#delivery.canSend?.(peer) === false) {
      throw new SignalingError('internal', 'The node of the peer cannot be reached right now (cluster link down); retry shortly.');
    }
  }

  /** `work` is undefined when the registry did it at once (in memory). */
  #background(operation: string, work: void | Promise<unknown>): void {
    work?.catch((error: unknown) => this.#observer?.backgroundFailed(operation, error));
  }

  #receive(target: SocketId, message: DeliveryMessage): void {
    // An idle socket holds no route: only a launch (to a sharer, which is
    // not idle) writes to it, and then it gets its own state.
    let socket = this.#sockets.get(target);
    if (socket === IDLE && message.kind === 'launch') socket = this.#socket(target);
    switch (message.kind) {
      case 'launch': {
        if (!socket) {
          // The sharer left while this launch was under way.
          this.#delivery.send(message.joiner, { kind: 'sharer-gone', name: message.name, uid: message.uid, sharer: target });
          return;
        }
        let route = this.#routes.sharerEnd(socket, message.name, message.uid);
        if (route === undefined || route.joiner !== message.joiner) {
          // Another joiner's route of the same uid, whose joiner-gone is still under way, ends here.
          if (route !== undefined) this.#routes.dropSharerEnd(route);
          route = this.#routes.addSharerEnd(socket, message.name, message.uid, message.joiner);
          const share = socket.shares.get(message.name);
          if (share) share.joins++;
        }
        this.#routes.use(route);
        this.#observer?.relayed('launch', this.#clock.now() - message.sentAt);
        this.#sink.launchResponse(target, message.uid, message.message);
        return;
      }
      case 'answer': {
        // Only while the joiner is still routed to this sharer.
        if (socket === undefined || this.#routes.joinerEnd(socket, message.name, message.uid)?.sharer !== message.sharer) return;
        this.#observer?.relayed('answer', this.#clock.now() - message.sentAt);
        this.#sink.answerResponse(target, message.message);
        return;
      }
      case 'sharer-gone': {
        const route = socket && this.#routes.joinerEnd(socket, message.name, message.uid);
        if (socket === undefined || route?.sharer !== message.sharer) return;
        this.#routes.dropJoinerEnd(route);
        this.#background('removeRoute', this.#registry.removeRoute(message.name, message.uid, target));
        this.#sink.sharerGone(target, message.name, message.uid);
        return;
      }
      case 'joiner-gone': {
        const route = socket && this.#routes.sharerEnd(socket, message.name, message.uid);
        if (socket === undefined || route?.joiner !== message.joiner) return;
        this.#routes.dropSharerEnd(route);
        return;
      }
    }
  }
}
