/**
 * The routes this node's sockets take part in: one record per route, held
 * by its joiner, by its sharer, or (when both are sockets of this node, as
 * always in memory mode) by both.
 *
 * Each join makes a route and, past the joiner's route cap, drops one, so a
 * looping joiner keeps 64 of them: at 500 busy pairs, 32,000 routes whose
 * state is larger than the caches (bench/RESULTS.md, phase 10). Keeping one
 * record for both ends, found through one table of this node, halves the
 * records and slots a join writes and the cold cache lines it touches,
 * compared with a table and a record for each end.
 *
 * The table is keyed by (name, uid) hashed as a pair, so no key string is
 * built. Its slots hold the record itself and the hash (the key is read
 * from the record only when the hashes agree). Two records share a key only
 * for a moment (one end of a route that is going, in cluster mode, beside
 * the end of the route that replaces it): both stay in the table, in the
 * same probe run, and a lookup picks the one the asking socket holds.
 * @module
 */
import { hashPair, removeSlot } from './string-table.js';
import type { JoinerUID, ShareName, SocketId } from './types.js';

/** A socket as the route book keeps its routes: two lists, no table of its own. */
export interface RouteHolder {
  readonly id: SocketId;
  /** Its routes as joiner, oldest first: the oldest goes past the cap. */
  joinerOldest: HeldRoute | undefined;
  joinerNewest: HeldRoute | undefined;
  joinerCount: number;
  /** Its routes as sharer, oldest first. */
  sharerOldest: HeldRoute | undefined;
  sharerNewest: HeldRoute | undefined;
  sharerCount: number;
  /**
   * How many of its routes as sharer each name has: where the 2-argument
   * answer, which names no share, looks for the uid.
   */
  sharerNames: Map<ShareName, number> | undefined;
}

export class HeldRoute {
  /** The holder of each end on this node; undefined when that end is elsewhere, or gone. */
  joinerEnd: RouteHolder | undefined = undefined;
  sharerEnd: RouteHolder | undefined = undefined;
  /** Neighbours in the joiner's and in the sharer's list. */
  joinerOlder: HeldRoute | undefined = undefined;
  joinerNewer: HeldRoute | undefined = undefined;
  sharerOlder: HeldRoute | undefined = undefined;
  sharerNewer: HeldRoute | undefined = undefined;
  /** When its sharer last relayed a launch on it (a counter): the 2-argument answer takes the latest. */
  used = 0;
  constructor(
    public name: ShareName,
    public uid: JoinerUID,
    public joiner: SocketId,
    public sharer: SocketId,
  ) {}
}

// Each slot is two elements of one array: a record (or undefined) and the
// hash of its key, so a probe reads one cache line and the table is one
// allocation.
const ROUTE = 0;
const HASH = 1;
const STRIDE = 2;
const MIN_SLOTS = 64;

/**
 * Records given back when both ends went, for the next route: a route lives
 * for its joiner's next 64 joins under load, long enough to be promoted to
 * the old generation and die there; reusing it keeps that out of the GC.
 */
const SPARE_MAX = 4096;

export class RouteBook {
  #slots: (HeldRoute | number | undefined)[];
  #mask: number;
  /** Records held (slots in use). */
  #size = 0;
  #uses = 0;
  readonly #spare: HeldRoute[] = [];

  constructor() {
    this.#slots = emptySlots(MIN_SLOTS);
    this.#mask = MIN_SLOTS - 1;
  }

  /** The route `joiner` holds as joiner under (name, uid). */
  joinerEnd(joiner: RouteHolder, name: ShareName, uid: JoinerUID): HeldRoute | undefined {
    return this.#held(joiner, true, name, uid);
  }

  /** The route `sharer` holds as sharer under (name, uid). */
  sharerEnd(sharer: RouteHolder, name: ShareName, uid: JoinerUID): HeldRoute | undefined {
    return this.#held(sharer, false, name, uid);
  }

  /** The route of `uid`, under whatever name, on which `sharer` relayed a launch last. */
  latestSharerEnd(sharer: RouteHolder, uid: JoinerUID): HeldRoute | undefined {
    let latest: HeldRoute | undefined;
    if (sharer.sharerNames === undefined) return undefined;
    for (const name of sharer.sharerNames.keys()) {
      const route = this.sharerEnd(sharer, name, uid);
      if (route !== undefined && (latest === undefined || route.used > latest.used)) latest = route;
    }
    return latest;
  }

  /** Records a new route of `joiner` to `sharer` as the joiner's newest. */
  addJoinerEnd(joiner: RouteHolder, name: ShareName, uid: JoinerUID, sharer: SocketId): HeldRoute {
    const newest = joiner.joinerNewest;
    // A name arrives as a fresh string in every packet; a route keeping it
    // would carry it into the old generation for the route's life, while a
    // joiner's launches nearly always name the share its last one did.
    const route = this.#record(newest !== undefined && newest.name === name ? newest.name : name, uid, joiner.id, sharer);
    route.joinerEnd = joiner;
    route.joinerOlder = newest;
    if (newest) newest.joinerNewer = route;
    else joiner.joinerOldest = route;
    joiner.joinerNewest = route;
    joiner.joinerCount++;
    return route;
  }

  /**
   * Records `sharer`'s end of the route of (name, uid) from `joiner`: on the
   * joiner's record when the joiner is a socket of this node, else on a new one.
   */
  addSharerEnd(sharer: RouteHolder, name: ShareName, uid: JoinerUID, joiner: SocketId): HeldRoute {
    const route = this.#joinersRecord(name, uid, joiner, sharer.id) ?? this.#record(name, uid, joiner, sharer.id);
    route.sharerEnd = sharer;
    const newest = sharer.sharerNewest;
    route.sharerOlder = newest;
    if (newest) newest.sharerNewer = route;
    else sharer.sharerOldest = route;
    sharer.sharerNewest = route;
    sharer.sharerCount++;
    const names = (sharer.sharerNames ??= new Map());
    names.set(route.name, (names.get(route.name) ?? 0) + 1);
    return route;
  }

  /** Marks a route as the latest its sharer relayed a launch on. */
  use(route: HeldRoute): void {
    route.used = ++this.#uses;
  }

  /** Drops the joiner's end of a route (the record goes when neither end is held). */
  dropJoinerEnd(route: HeldRoute): void {
    const joiner = route.joinerEnd;
    if (joiner === undefined) return;
    if (route.joinerOlder) route.joinerOlder.joinerNewer = route.joinerNewer;
    else joiner.joinerOldest = route.joinerNewer;
    if (route.joinerNewer) route.joinerNewer.joinerOlder = route.joinerOlder;
    else joiner.joinerNewest = route.joinerOlder;
    route.joinerOlder = route.joinerNewer = route.joinerEnd = undefined;
    joiner.joinerCount--;
    if (route.sharerEnd === undefined) this.#forget(route);
  }

  /** Drops the sharer's end of a route (the record goes when neither end is held). */
  dropSharerEnd(route: HeldRoute): void {
    const sharer = route.sharerEnd;
    if (sharer === undefined) return;
    if (route.sharerOlder) route.sharerOlder.sharerNewer = route.sharerNewer;
    else sharer.sharerOldest = route.sharerNewer;
    if (route.sharerNewer) route.sharerNewer.sharerOlder = route.sharerOlder;
    else sharer.sharerNewest = route.sharerOlder;
    route.sharerOlder = route.sharerNewer = route.sharerEnd = undefined;
    sharer.sharerCount--;
    const names = sharer.sharerNames!;
    const left = names.get(route.name)! - 1;
    if (left === 0) names.delete(route.name);
    else names.set(route.name, left);
    if (route.joinerEnd === undefined) this.#forget(route);
  }

  /** The joiner's routes, oldest first; `visit` may drop the end it is given. */
  forEachJoinerEnd(joiner: RouteHolder, visit: (route: HeldRoute) => void): void {
    let route = joiner.joinerOldest;
    while (route !== undefined) {
      const next = route.joinerNewer;
      visit(route);
      route = next;
    }
  }

  /** The sharer's routes, oldest first; `visit` may drop the end it is given. */
  forEachSharerEnd(sharer: RouteHolder, visit: (route: HeldRoute) => void): void {
    let route = sharer.sharerOldest;
    while (route !== undefined) {
      const next = route.sharerNewer;
      visit(route);
      route = next;
    }
  }

  /** Records held (for tests: both ends of a local route are one record). */
  get records(): number {
    return this.#size;
  }

  /** The record of (name, uid) whose joiner end (`asJoiner`) or sharer end `holder` holds. */
  #held(holder: RouteHolder, asJoiner: boolean, name: ShareName, uid: JoinerUID): HeldRoute | undefined {
    const slots = this.#slots;
    const mask = this.#mask;
    const hash = hashPair(name, uid);
    for (let i = hash & mask; ; i = (i + 1) & mask) {
      const route = slots[i * STRIDE + ROUTE] as HeldRoute | undefined;
      if (route === undefined) return undefined;
      if (
        slots[i * STRIDE + HASH] === hash &&
        (asJoiner ? route.joinerEnd : route.sharerEnd) === holder &&
        route.uid === uid &&
        route.name === name
      ) {
        return route;
      }
    }
  }

  /** The record of a joiner here routed to `sharer` under (name, uid), if its sharer end is free. */
  #joinersRecord(name: ShareName, uid: JoinerUID, joiner: SocketId, sharer: SocketId): HeldRoute | undefined {
    const slots = this.#slots;
    const mask = this.#mask;
    const hash = hashPair(name, uid);
    for (let i = hash & mask; ; i = (i + 1) & mask) {
      const route = slots[i * STRIDE + ROUTE] as HeldRoute | undefined;
      if (route === undefined) return undefined;
      if (
        slots[i * STRIDE + HASH] === hash &&
        route.sharerEnd === undefined &&
        route.joiner === joiner &&
        route.sharer === sharer &&
        route.uid === uid &&
        route.name === name
      ) {
        return route;
      }
    }
  }

  /** A record for a new route, in the table. */
  #record(name: ShareName, uid: JoinerUID, joiner: SocketId, sharer: SocketId): HeldRoute {
    let route = this.#spare.pop();
    if (route === undefined) {
      route = new HeldRoute(name, uid, joiner, sharer);
    } else {
      route.name = name;
      route.uid = uid;
      route.joiner = joiner;
      route.sharer = sharer;
      route.used = 0;
    }
    // At most 5/8 full, so probes stay short.
    if ((this.#size + 1) * 8 > (this.#mask + 1) * 5) this.#resize((this.#mask + 1) * 2);
    const slots = this.#slots;
    const mask = this.#mask;
    const hash = hashPair(name, uid);
    let i = hash & mask;
    while (slots[i * STRIDE + ROUTE] !== undefined) i = (i + 1) & mask;
    slots[i * STRIDE + ROUTE] = route;
    slots[i * STRIDE + HASH] = hash;
    this.#size++;
    return route;
  }

  /** Takes a record neither end holds out of the table, for reuse. */
  #forget(route: HeldRoute): void {
    const slots = this.#slots;
    const mask = this.#mask;
    let hole = hashPair(route.name, route.uid) & mask;
    while (slots[hole * STRIDE + ROUTE] !== route) hole = (hole + 1) & mask;
    removeSlot(slots, STRIDE, HASH, mask, hole);
    this.#size--;
    const capacity = mask + 1;
    // A node that held many routes gives the memory back once it holds few.
    if (capacity > MIN_SLOTS && this.#size * 8 < capacity) this.#resize(capacity / 2);
    if (this.#spare.length < SPARE_MAX) this.#spare.push(route);
  }

  #resize(capacity: number): void {
    const old = this.#slots;
    const slots = emptySlots(capacity);
    const mask = capacity - 1;
    for (let at = 0; at < old.length; at += STRIDE) {
      const route = old[at + ROUTE];
      if (route === undefined) continue;
      let i = (old[at + HASH] as number) & mask;
      while (slots[i * STRIDE + ROUTE] !== undefined) i = (i + 1) & mask;
      slots[i * STRIDE + ROUTE] = route;
      slots[i * STRIDE + HASH] = old[at + HASH];
    }
    this.#slots = slots;
    this.#mask = mask;
  }
}

function emptySlots(capacity: number): (HeldRoute | number | undefined)[] {
  const slots: (HeldRoute | number | undefined)[] = [];
  for (let i = 0; i < capacity; i++) slots.push(undefined, 0);
  return slots;
}
