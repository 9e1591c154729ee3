/**
 * Every protocol suite of test/protocol/, unchanged, against two server
 * processes on one real redis-server: sharers on node 0, joiners on node 1,
 * so every relay crosses nodes. Suites are discovered, so a suite added to
 * test/protocol/ runs here too; one that cannot hold in cluster mode for a
 * principled reason is listed in SKIPPED with the reason.
 * @module
 */
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { describe, it } from 'node:test';
import { clusterTopology } from '../support/cluster.js';
import type { TopologyFactory } from '../support/topology.js';

type Suite = (label: string, makeTopology: TopologyFactory) => void;

/** Suite name -> why it does not run against a cluster. */
const SKIPPED: Record<string, string> = {};

const dir = new URL('../protocol/', import.meta.url);
const files = readdirSync(dir)
  .filter((f) => f.endsWith('-suite.ts'))
  .sort();
const ran: string[] = [];
for (const file of files) {
  const module = (await import(new URL(file, dir).href)) as Record<string, unknown>;
  for (const [name, value] of Object.entries(module)) {
    if (!name.endsWith('Suite') || typeof value !== 'function') continue;
    if (Object.hasOwn(SKIPPED, name)) {
      describe(`${name} (cluster)`, () => it.skip(SKIPPED[name]!));
      continue;
    }
    ran.push(name);
    (value as Suite)('cluster', clusterTopology);
  }
}

it('found the protocol suites', () => {
  assert.ok(ran.length >= 5, `only ${ran.join(', ')}`);
});
