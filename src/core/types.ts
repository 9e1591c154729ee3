/**
 * Identifiers and records shared by the core, its registries and deliveries.
 * @module
 */
import type { JoinerUID, ShareName, SignalMessage } from '../protocol/events.js';

export type { JoinerUID, ShareName, SignalMessage };

/** A connected socket, unique across every node of a cluster. */
export type SocketId = string;

/** What the registry keeps for one (name, sharer) pair. */
export interface ShareTerms {
  /** Milliseconds since the epoch after which the share admits nobody. */
  expiresAt: number;
  /** Joiners admitted in total, or undefined for no limit. */
  maxJoins: number | undefined;
}

/** Where a joiner's messages for one share go. */
export interface Route {
  sharer: SocketId;
  joiner: SocketId;
}

/** Names one route of a joiner known from context. */
export interface RouteRef {
  name: ShareName;
  uid: JoinerUID;
}

/**
 * Outcome of asking the registry to route a joiner. `evicted`: the route
 * passed as `evict` was removed with this one (see Registry.route).
 */
export type RouteOutcome =
  | { ok: true; sharer: SocketId; fresh: boolean; evicted?: boolean }
  | { ok: false; code: 'no-sharer' | 'share-full' | 'uid-taken' };

/**
 * Messages between cores, addressed to one socket. In memory they are handed
 * over directly; in cluster mode they travel between nodes.
 */
export type DeliveryMessage =
  | {
      kind: 'launch';
      name: ShareName;
      uid: JoinerUID;
      joiner: SocketId;
      message: SignalMessage;
      /** Sender's clock, milliseconds since the epoch, for relay latency. */
      sentAt: number;
    }
  | { kind: 'answer'; name: ShareName; uid: JoinerUID; sharer: SocketId; message: SignalMessage; sentAt: number }
  /** To a joiner: the sharer it was routed to is gone. */
  | { kind: 'sharer-gone'; name: ShareName; uid: JoinerUID; sharer: SocketId }
  /** To a sharer: a joiner routed to it is gone; forget the route. */
  | { kind: 'joiner-gone'; name: ShareName; uid: JoinerUID; joiner: SocketId };
