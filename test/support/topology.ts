/**
 * A Topology is the set of servers a protocol test talks to. The same suite
 * runs against one in-memory node and against a cluster of nodes on Redis:
 * sharers connect to `url('sharer')`, joiners to `url('joiner')`, and on a
 * cluster those are different nodes. Tests may read only what any client
 * could: sockets, /healthz and /metrics over HTTP.
 * @module
 */
import type { Settings } from './util.js';
import { startTestServer } from './util.js';

export interface Topology {
  /** Where a client in this role connects; numbers pick nodes round-robin. */
  url(role: 'sharer' | 'joiner' | number): string;
  /** Every node's base URL. */
  readonly urls: readonly string[];
  close(): Promise<void>;
}

export type TopologyFactory = (settings?: Settings) => Promise<Topology>;

/** One node, in this process, in memory mode. */
export const memoryTopology: TopologyFactory = async (settings = {}) => {
  const server = await startTestServer(settings);
  return { url: () => server.url, urls: [server.url], close: () => server.close() };
};

export interface HealthBody {
  status: string;
  sockets: number;
  shares: number;
  routes: number;
  registry: { shares: number; routes: number };
}

/** The /healthz bodies of every node. */
export async function health(topology: Topology): Promise<HealthBody[]> {
  return Promise.all(topology.urls.map(async (u) => (await (await fetch(`${u}/healthz`)).json()) as HealthBody));
}
