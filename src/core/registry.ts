/**
 * The Registry holds what every node must agree on: who shares which name,
 * and where each joiner is routed. The in-memory implementation serves one
 * node; the Redis one a cluster. Both pass test/cluster/registry-contract.ts.
 * @module
 */
import type { JoinerUID, Route, RouteOutcome, RouteRef, ShareName, ShareTerms, SocketId } from './types.js';

export interface RegistryCounts {
  /** (name, sharer) pairs currently registered. */
  shares: number;
  /** Joiner routes currently registered. */
  routes: number;
}

export interface Registry {
  /** Registers `sharer` under `name`, or renews its terms; keeps its join count. */
  addShare(name: ShareName, sharer: SocketId, terms: ShareTerms): Promise<void>;
  /** Unregisters `sharer` from `name`. Routes already made stay. */
  removeShare(name: ShareName, sharer: SocketId): Promise<void>;
  /**
   * Atomically routes a joiner: an existing route of the same joiner is
   * reused; one of another socket yields `uid-taken`; otherwise a random
   * unexpired sharer with room is chosen, its join count increased and the
   * route recorded. A registry that can answer at once (in memory) returns
   * the outcome itself: the core then relays the launch in the same call,
   * with no Promise or microtask per launch.
   *
   * `evict`: another route of the same joiner (the oldest, past the core's
   * route cap) to remove in the same step when this one is made, as
   * `removeRoute` would, so a capped launch costs one registry call. A
   * registry that did so says `evicted: true`; otherwise the core removes
   * it with `removeRoute` (so a registry may ignore the argument).
   */
  route(name: ShareName, uid: JoinerUID, joiner: SocketId, now: number, evict?: RouteRef): RouteOutcome | Promise<RouteOutcome>;
  /** The route of (name, uid), if any. */
  lookupRoute(name: ShareName, uid: JoinerUID): Promise<Route | undefined>;
  /**
   * Removes the route of (name, uid) if it still belongs to `joiner`; may
   * return nothing when done at once (in memory), like `route`.
   */
  removeRoute(name: ShareName, uid: JoinerUID, joiner: SocketId): void | Promise<void>;
  counts(): Promise<RegistryCounts>;
  close(): Promise<void>;
}

/**
 * What one node's sockets hold, as the core knows it: enough to register it
 * again after the shared registry lost it (a Redis restart, or a node that
 * was taken for dead while it could not reach Redis).
 */
export interface RegistrySnapshot {
  /** Shares of this node's sockets; `joins` is what the sharer saw admitted. */
  shares: { name: ShareName; sharer: SocketId; terms: ShareTerms; joins: number }[];
  /** Routes whose joiner is one of this node's sockets. */
  routes: { name: ShareName; uid: JoinerUID; route: Route }[];
}
