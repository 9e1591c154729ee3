/**
 * Cluster-wide socket ids. socket.io v4 mints each socket's id itself
 * (`base64id`, independent of `engine.generateId`), unique on one node only.
 * In cluster mode the endpoint hands the core `<nodeId>#<socket.io id>`, so
 * every id is unique across nodes and names the node that holds it: the
 * delivery routes by that prefix without a lookup table in Redis. Clients
 * never see these ids (the 2-argument `launch` still uses the socket.io id).
 * @module
 */
import { randomBytes } from 'node:crypto';
import type { SocketId } from '../core/types.js';

/** One server process in a cluster; a restarted process gets a new one. */
export type NodeId = string;

/** Separates the node id from the socket.io id; node ids never contain it. */
export const NODE_SEPARATOR = '#';

/** 72 random bits, URL-safe (no `#`, `:` or space). */
export const mintNodeId = (): NodeId => randomBytes(9).toString('base64url');

/** The prefix the endpoint puts before socket.io ids on `node`. */
export const socketIdPrefix = (node: NodeId): string => `${node}${NODE_SEPARATOR}`;

/** The node that holds `socket`, or undefined for an id without one. */
export function nodeOf(socket: SocketId): NodeId | undefined {
  const at = socket.indexOf(NODE_SEPARATOR);
  return at > 0 ? socket.slice(0, at) : undefined;
}
