/**
 * The Registry contract against both implementations: InMemoryRegistry,
 * and RedisRegistry as two nodes on one real redis-server.
 * @module
 */
import { Redis } from 'ioredis';
import { InMemoryRegistry } from '../../src/cluster/in-memory-registry.js';
import { mintNodeId, socketIdPrefix } from '../../src/cluster/node-id.js';
import { RedisRegistry } from '../../src/cluster/redis-registry.js';
import { startRedis, type TestRedis } from '../support/redis.js';
import { registryContract, type RegistryHarness } from './registry-contract.js';

registryContract('memory', async () => {
  const harness: RegistryHarness = {
    a: new InMemoryRegistry(),
    b: new InMemoryRegistry(),
    id: (_node, local) => local,
    async reset() {
      harness.a = harness.b = new InMemoryRegistry();
    },
    async close() {},
  };
  harness.b = harness.a;
  return harness;
});

registryContract('redis', async () => {
  const server: TestRedis = await startRedis();
  let round = 0;
  let clients: Redis[] = [];
  const nodes = { a: '', b: '' };
  const make = async (): Promise<[RedisRegistry, RedisRegistry]> => {
    const prefix = `contract${++round}:`;
    const pair = [];
    for (const side of ['a', 'b'] as const) {
      const client = new Redis(server.url, { enableOfflineQueue: false, commandTimeout: 2000, maxRetriesPerRequest: 0, lazyConnect: true });
      client.on('error', () => undefined);
      await client.connect();
      clients.push(client);
      nodes[side] = mintNodeId();
      const registry = new RedisRegistry({ redis: client, nodeId: nodes[side], prefix, heartbeatInterval: 200, nodeTimeout: 2000 });
      await registry.start();
      pair.push(registry);
    }
    return pair as [RedisRegistry, RedisRegistry];
  };
  const closeAll = async (h: RegistryHarness): Promise<void> => {
    await Promise.all([h.a.close(), h.b.close()]);
    for (const c of clients) c.disconnect();
    clients = [];
  };
  const [a, b] = await make();
  const harness: RegistryHarness = {
    a,
    b,
    id: (node, local) => `${socketIdPrefix(nodes[node])}${local}`,
    async reset() {
      await closeAll(harness);
      [harness.a, harness.b] = await make();
    },
    async close() {
      await closeAll(harness);
      await server.stop();
    },
  };
  return harness;
});
