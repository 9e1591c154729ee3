/**
 * The routes one socket holds in one role (as joiner, or as sharer), found
 * by (name, joinerUID) without building a key string.
 *
 * A route is identified by its name and uid, but nearly every lookup (the
 * relay of each launch and answer) would otherwise concatenate the two into
 * a fresh string, which the Map must then flatten and hash. Here routes are
 * filed under the uid alone (a StringTable, see string-table.ts), and
 * the rare routes that share a uid under other names hang off the first as
 * a short chain. The chain keeps the uid's most recently used route first:
 * that is where the 2-argument `answer` goes.
 *
 * The table also keeps its routes in a list, oldest first, so the oldest can
 * be dropped past the route cap and walks need no Map iterator.
 * @module
 */
import { StringTable } from './string-table.js';
import type { JoinerUID, ShareName, SocketId } from './types.js';

/** One route as one of its ends holds it. */
export interface RouteEnd {
  name: ShareName;
  uid: JoinerUID;
  /** The socket at the other end. */
  peer: SocketId;
  /** The next route of the same uid (under another name), less recently used. */
  sibling: RouteEnd | undefined;
  older: RouteEnd | undefined;
  newer: RouteEnd | undefined;
}

/**
 * Routes given back by `recycle`, for `routeEnd` to use again. A route
 * lives for the exchange of one join (under load, for as long as its
 * joiner's next 64 joins): long enough to outlive a young-generation GC or
 * two, be copied and promoted, and then leave garbage in the old
 * generation. Reusing the objects keeps that traffic out of the GC, which
 * otherwise sets the tail of relay latency.
 */
const spare: RouteEnd[] = [];
const SPARE_MAX = 4096;

export function routeEnd(name: ShareName, uid: JoinerUID, peer: SocketId): RouteEnd {
  const route = spare.pop();
  if (route === undefined) return { name, uid, peer, sibling: undefined, older: undefined, newer: undefined };
  // Of two equal names, the one the route held stays: it is already old,
  // and a fresh one (each packet brings its own) then dies young.
  if (route.name !== name) route.name = name;
  route.uid = uid;
  route.peer = peer;
  return route;
}

/**
 * Gives back a route deleted from its table, for `routeEnd` to use again.
 * Only for a route nothing else still reads: its fields change when it is
 * used again.
 */
export function recycle(route: RouteEnd): void {
  if (spare.length < SPARE_MAX) spare.push(route);
}

export class RouteTable {
  // Not a Map: routes churn, and a Map's rehashes under churn are old-generation garbage (see string-table.ts).
  readonly #byUid = new StringTable<RouteEnd>();
  #oldest: RouteEnd | undefined = undefined;
  #newest: RouteEnd | undefined = undefined;
  #size = 0;

  get size(): number {
    return this.#size;
  }

  /** The route of (name, uid), if held. */
  get(name: ShareName, uid: JoinerUID): RouteEnd | undefined {
    let route = this.#byUid.get(uid);
    while (route !== undefined && route.name !== name) route = route.sibling;
    return route;
  }

  /** The most recently used route of `uid`, under whatever name. */
  latest(uid: JoinerUID): RouteEnd | undefined {
    return this.#byUid.get(uid);
  }

  /**
   * `name`, or the equal string the newest route holds already. A name
   * arrives as a fresh string in every packet; a new route keeping that one
   * would carry it into the old generation for the route's life, while a
   * joiner's launches nearly always name the share its last one did.
   */
  heldName(name: ShareName): ShareName {
    const held = this.#newest?.name;
    return held === name ? held : name;
  }

  /** The route held longest. */
  oldest(): RouteEnd | undefined {
    return this.#oldest;
  }

  /** Adds a route no route of the same (name, uid) is held for, as the newest and its uid's most recently used. */
  add(route: RouteEnd): void {
    route.sibling = this.#byUid.get(route.uid);
    this.#byUid.set(route.uid, route);
    route.older = this.#newest;
    route.newer = undefined;
    if (this.#newest) this.#newest.newer = route;
    else this.#oldest = route;
    this.#newest = route;
    this.#size++;
  }

  /** Makes a held route its uid's most recently used. */
  use(route: RouteEnd): void {
    const first = this.#byUid.get(route.uid);
    if (first === route || first === undefined) return;
    this.#unchain(first, route);
    route.sibling = first;
    this.#byUid.set(route.uid, route);
  }

  /** Removes a held route. */
  delete(route: RouteEnd): void {
    const first = this.#byUid.get(route.uid);
    if (first === route) {
      if (route.sibling) this.#byUid.set(route.uid, route.sibling);
      else this.#byUid.delete(route.uid);
    } else if (first !== undefined) {
      this.#unchain(first, route);
    }
    route.sibling = undefined;
    if (route.older) route.older.newer = route.newer;
    else this.#oldest = route.newer;
    if (route.newer) route.newer.older = route.older;
    else this.#newest = route.older;
    route.older = route.newer = undefined;
    this.#size--;
  }

  /** Every route, oldest first; `visit` may delete the route it is given. */
  forEach(visit: (route: RouteEnd) => void): void {
    let route = this.#oldest;
    while (route !== undefined) {
      const next = route.newer;
      visit(route);
      route = next;
    }
  }

  /** Takes `route` out of the uid chain that starts at `first` (not `route` itself). */
  #unchain(first: RouteEnd, route: RouteEnd): void {
    let before = first;
    while (before.sibling !== undefined && before.sibling !== route) before = before.sibling;
    if (before.sibling === route) before.sibling = route.sibling;
  }
}
