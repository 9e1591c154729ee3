/**
 * A real cluster for tests: a redis-server (test/support/redis.ts) and N
 * server processes started exactly as users start them (`node dist/cli.js`
 * with REDIS_URL), each on a free loopback port. `npm test` builds dist/
 * first; when developing, run `npm run build` before these tests.
 *
 * `clusterTopology` is the TopologyFactory of the protocol suites: sharers
 * connect to node 0, joiners to node 1.
 * @module
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { settingNames, type SettingKey } from '../../src/server/config.js';
import { startRedis, type TestRedis } from './redis.js';
import type { Topology, TopologyFactory } from './topology.js';
import type { Settings } from './util.js';

const CLI = fileURLToPath(new URL('../../dist/cli.js', import.meta.url));

/** Fast heartbeats, so fault tests see a dead node in seconds. */
export const TEST_CLUSTER_SETTINGS: Settings = { heartbeatInterval: 250, nodeTimeout: 2500, redisCommandTimeout: 1000 };

export interface ClusterNode {
  readonly index: number;
  readonly url: string;
  readonly port: number;
  readonly pid: number;
  /** The node id from its `listening` log line. */
  readonly nodeId: string;
  /** Every JSON log line the node printed so far. */
  readonly logs: Record<string, unknown>[];
  /** Resolves with the exit code (or signal) once the process ended. */
  readonly exited: Promise<number | string>;
  /** SIGTERM, then waits for the exit. */
  stop(): Promise<number | string>;
  /** SIGKILL (a crash), then waits for the exit. */
  kill(): Promise<number | string>;
}

export interface TestCluster extends Topology {
  readonly redis: TestRedis;
  readonly nodes: ClusterNode[];
  readonly prefix: string;
  /** Starts one more node on the same Redis. */
  addNode(extra?: Settings): Promise<ClusterNode>;
}

const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of running) if (child.exitCode === null && child.signalCode === null) process.kill(child.pid!, 'SIGKILL');
});

function envOf(settings: Settings): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(settings)) {
    if (value !== undefined) env[settingNames(key as SettingKey).env] = String(value);
  }
  return env;
}

/** Starts `node dist/cli.js` with these settings and waits for its `listening` line. */
export async function startNode(index: number, settings: Settings): Promise<ClusterNode> {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npm run build\` first (npm test does)`);
  const { PATH, HOME, LANG, TMPDIR, NODE_OPTIONS } = process.env;
  const base = Object.fromEntries(Object.entries({ PATH, HOME, LANG, TMPDIR, NODE_OPTIONS }).filter(([, v]) => v !== undefined)) as Record<string, string>;
  const child = spawn(process.execPath, [CLI], {
    env: { ...base, ...envOf({ port: 0, host: '127.0.0.1', logLevel: 'info', ...settings }) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  running.add(child);
  const logs: Record<string, unknown>[] = [];
  let stderr = '';
  let pending = '';
  child.stderr!.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
  const exited = new Promise<number | string>((resolve) =>
    child.once('exit', (code, signal) => {
      running.delete(child);
      resolve(code ?? signal ?? 'unknown');
    }),
  );
  const listening = new Promise<Record<string, unknown>>((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => {
      pending += d.toString();
      const lines = pending.split('\n');
      pending = lines.pop()!;
      for (const line of lines) {
        if (!line.trim()) continue;
        try {
          const entry = JSON.parse(line) as Record<string, unknown>;
          logs.push(entry);
          if (entry['msg'] === 'listening') resolve(entry);
        } catch {
          logs.push({ msg: line });
        }
      }
    });
    void exited.then((code) => reject(new Error(`node ${index} exited (${code}) before listening: ${stderr.slice(-1000)}`)));
    setTimeout(() => reject(new Error(`node ${index} did not listen within 20 s: ${stderr.slice(-1000)}`)), 20_000).unref();
  });
  let entry: Record<string, unknown>;
  try {
    entry = await listening;
  } catch (error) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    throw error;
  }
  const signal = async (sig: NodeJS.Signals): Promise<number | string> => {
    if (child.exitCode === null && child.signalCode === null) process.kill(child.pid!, sig);
    return exited;
  };
  return {
    index,
    url: entry['url'] as string,
    port: entry['port'] as number,
    pid: child.pid!,
    nodeId: entry['node'] as string,
    logs,
    exited,
    stop: () => signal('SIGTERM'),
    kill: () => signal('SIGKILL'),
  };
}

let clusters = 0;

/** A fresh redis-server and `size` nodes on it. */
export async function startCluster(size = 2, settings: Settings = {}): Promise<TestCluster> {
  const redis = await startRedis();
  const prefix = `sigtest${++clusters}:`;
  const nodeSettings: Settings = { ...TEST_CLUSTER_SETTINGS, ...settings, redisUrl: redis.url, redisPrefix: prefix };
  const nodes: ClusterNode[] = [];
  try {
    for (let i = 0; i < size; i++) nodes.push(await startNode(i, nodeSettings));
  } catch (error) {
    await Promise.all(nodes.map((n) => n.kill()));
    await redis.stop();
    throw error;
  }
  const cluster: TestCluster = {
    redis,
    nodes,
    prefix,
    get urls() {
      return nodes.map((n) => n.url);
    },
    url(role) {
      const index = role === 'sharer' ? 0 : role === 'joiner' ? 1 : role;
      return nodes[index % nodes.length]!.url;
    },
    async addNode(extra = {}) {
      const node = await startNode(nodes.length, { ...nodeSettings, ...extra });
      nodes.push(node);
      return node;
    },
    async close() {
      await Promise.all(nodes.map((n) => n.stop()));
      await redis.stop();
    },
  };
  return cluster;
}

/** Two nodes on one Redis: sharers on node 0, joiners on node 1. */
export const clusterTopology: TopologyFactory = (settings = {}) => startCluster(2, settings);
