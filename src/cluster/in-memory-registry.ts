/**
 * The registry of a single node: plain Maps, every operation synchronous
 * under its Promise, so it is atomic by construction.
 * @module
 */
import type { Registry, RegistryCounts } from '../core/registry.js';
import { StringTable } from '../core/string-table.js';
import type { JoinerUID, Route, RouteOutcome, RouteRef, ShareName, ShareTerms, SocketId } from '../core/types.js';

interface ShareRecord extends ShareTerms {
  joins: number;
}

/** Route objects kept for reuse, at most. */
const SPARE_ROUTES = 4096;

/**
 * What the registry holds under one name: its sharers and its joiners'
 * routes, found with one lookup (a first launch needs both, and under load
 * each name's entry is a cache miss).
 */
interface NameEntry {
  sharers: Map<SocketId, ShareRecord>;
  /**
   * Created at the name's first route: many names are shared and never
   * joined. Routes come and go with every join: a StringTable (see
   * string-table.ts) and reused Route objects keep that churn out of the old
   * generation.
   */
  routes: StringTable<Route> | undefined;
}

export class InMemoryRegistry implements Registry {
  readonly #names = new Map<ShareName, NameEntry>();
  readonly #spareRoutes: Route[] = [];
  #shareCount = 0;
  #routeCount = 0;

  async addShare(name: ShareName, sharer: SocketId, terms: ShareTerms): Promise<void> {
    const sharers = this.#entry(name).sharers;
    const record = sharers.get(sharer);
    if (record) {
      record.expiresAt = terms.expiresAt;
      record.maxJoins = terms.maxJoins;
    } else {
      sharers.set(sharer, { ...terms, joins: 0 });
      this.#shareCount++;
    }
  }

  async removeShare(name: ShareName, sharer: SocketId): Promise<void> {
    const entry = this.#names.get(name);
    if (!entry?.sharers.delete(sharer)) return;
    this.#shareCount--;
    this.#release(name, entry);
  }

  // Synchronous: the core relays a first launch in the same call (no Promise).
  route(name: ShareName, uid: JoinerUID, joiner: SocketId, now: number, evict?: RouteRef): RouteOutcome | Promise<RouteOutcome> {
    const entry = this.#names.get(name);
    const existing = entry?.routes?.get(uid);
    if (existing) {
      if (existing.joiner !== joiner) return { ok: false, code: 'uid-taken' };
      if (evict) return { ok: true, sharer: existing.sharer, fresh: false, evicted: this.#evict(name, uid, joiner, evict) };
      return { ok: true, sharer: existing.sharer, fresh: false };
    }
    if (!entry) return { ok: false, code: 'no-sharer' };
    const sharers = entry.sharers;
    // Two passes over the sharers instead of collecting the open ones in an
    // array on every first launch: a name nearly always has one sharer.
    let open = 0;
    let live = false;
    for (const record of sharers.values()) {
      if (record.expiresAt <= now) continue;
      live = true;
      if (record.maxJoins === undefined || record.joins < record.maxJoins) open++;
    }
    if (open === 0) return { ok: false, code: live ? 'share-full' : 'no-sharer' };
    let pick = open === 1 ? 0 : Math.floor(Math.random() * open);
    for (const [sharer, record] of sharers) {
      if (record.expiresAt <= now || (record.maxJoins !== undefined && record.joins >= record.maxJoins)) continue;
      if (pick-- > 0) continue;
      record.joins++;
      const route = this.#spareRoutes.pop() ?? { sharer, joiner };
      route.sharer = sharer;
      route.joiner = joiner;
      (entry.routes ??= new StringTable()).set(uid, route);
      this.#routeCount++;
      if (evict) return { ok: true, sharer, fresh: true, evicted: this.#evict(name, uid, joiner, evict) };
      return { ok: true, sharer, fresh: true };
    }
    throw new Error('unreachable: an open sharer was counted');
  }

  /** The eviction `route` was asked for; never the route it just made. */
  #evict(name: ShareName, uid: JoinerUID, joiner: SocketId, evict: RouteRef): true {
    if (evict.name !== name || evict.uid !== uid) this.removeRoute(evict.name, evict.uid, joiner);
    return true;
  }

  async lookupRoute(name: ShareName, uid: JoinerUID): Promise<Route | undefined> {
    const route = this.#names.get(name)?.routes?.get(uid);
    // A copy: the registry's own object is reused once the route goes.
    return route && { sharer: route.sharer, joiner: route.joiner };
  }

  removeRoute(name: ShareName, uid: JoinerUID, joiner: SocketId): void {
    const entry = this.#names.get(name);
    const route = entry?.routes?.get(uid);
    if (entry === undefined || route?.joiner !== joiner) return;
    entry.routes!.delete(uid);
    if (this.#spareRoutes.length < SPARE_ROUTES) this.#spareRoutes.push(route);
    this.#routeCount--;
    this.#release(name, entry);
  }

  #entry(name: ShareName): NameEntry {
    let entry = this.#names.get(name);
    if (!entry) this.#names.set(name, (entry = { sharers: new Map(), routes: undefined }));
    return entry;
  }

  /** Forgets a name once it has neither sharers nor routes. */
  #release(name: ShareName, entry: NameEntry): void {
    if (entry.sharers.size === 0 && (entry.routes?.size ?? 0) === 0) this.#names.delete(name);
  }

  async counts(): Promise<RegistryCounts> {
    return { shares: this.#shareCount, routes: this.#routeCount };
  }

  async close(): Promise<void> {}
}
