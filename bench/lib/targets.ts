/**
 * The servers measured side by side, and how each is started. Every server
 * process runs pinned to the server core with the same memory probe
 * preloaded; cluster mode adds a second node and a real redis-server.
 * @module
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Target } from './generator.js';
import { freePort, hasCommand, RedisProcess, ROOT, ServerProcess, type MemorySample } from './procs.js';
import type { Protocol } from './wire.js';

export type ServerKey = 'ws' | 'peerjs' | 'socketio' | 'sigserve' | 'sigserve-sio' | 'sigserve-cluster' | 'sigserve-other';

/**
 * Limits of sigserve raised for the run, because a looping pair does in a
 * second what a real client does in a day: one socket sends thousands of
 * events a second (RATE_LIMIT 200/s, RATE_BURST 400, ADDRESS_EVENT_RATE
 * 5,000/s by default) and one share admits a fresh joiner per handshake
 * (MAX_JOINS_PER_SHARE 10,000 by default). They stay enforced, only higher.
 * Settings a build does not know are ignored, as environment variables.
 */
export const RAISED_LIMITS: Readonly<Record<string, string>> = {
  RATE_LIMIT: '1000000',
  RATE_BURST: '1000000',
  ADDRESS_EVENT_RATE: '10000000',
  MAX_JOINS_PER_SHARE: '1000000000',
};

/**
 * The servers sigserve (memory mode) is set against in the duel scenario, in
 * this order; against cluster mode (both nodes summed, redis-server apart) the
 * duel gives the cluster's cost over memory mode.
 */
export const DUEL_RIVALS: readonly ServerKey[] = ['peerjs', 'ws', 'sigserve-cluster'];

export interface ServerSpec {
  key: ServerKey;
  label: string;
  protocol: Protocol;
  /** Why this server cannot run here, or undefined when it can. */
  unavailable(): string | undefined;
  start(options: StartOptions): Promise<RunningTarget>;
}

export interface StartOptions {
  /** Extra node flags for every server process (e.g. --cpu-prof). */
  nodeFlags?: string[];
}

export interface RunningTarget {
  target: Target;
  /** Server processes whose CPU and memory count. */
  processes: ServerProcess[];
  /** Processes measured apart (redis-server). */
  sidePids: number[];
  memory(): Promise<MemorySample>;
  stop(): Promise<void>;
}

const CLI = join(ROOT, 'dist', 'cli.js');

function sum(samples: MemorySample[]): MemorySample {
  const total: MemorySample = { rss: 0, heapUsed: 0, heapTotal: 0, external: 0, arrayBuffers: 0 };
  for (const s of samples) for (const k of Object.keys(total) as (keyof MemorySample)[]) total[k] += s[k];
  return total;
}

async function single(label: string, protocol: Protocol, script: string[], env: Record<string, string> = {}, nodeFlags: string[] = []): Promise<RunningTarget> {
  const port = await freePort();
  const server = new ServerProcess({ label, script, env: { PORT: String(port), ...env }, port, nodeFlags });
  try {
    await server.ready();
  } catch (error) {
    await server.stop();
    throw error;
  }
  const url = `http://127.0.0.1:${port}`;
  return {
    target: { protocol, sharerUrl: url, joinerUrl: url, urls: [url] },
    processes: [server],
    sidePids: [],
    memory: () => server.memory(),
    stop: () => server.stop(),
  };
}

const sigserveEnv = (): Record<string, string> => ({ HOST: '127.0.0.1', LOG_LEVEL: process.env['BENCH_LOG_LEVEL'] ?? 'info', ...RAISED_LIMITS });

function sigserveBuilt(): string | undefined {
  return existsSync(CLI) ? undefined : 'dist/cli.js is missing: run `npm run build`';
}

/** The `listening` log line of a sigserve node, if it logged one. */
function listeningMode(output: string): string | undefined {
  for (const line of output.split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      const entry = JSON.parse(line) as { msg?: string; mode?: string };
      if (entry.msg === 'listening') return entry.mode;
    } catch {
      // not a log line
    }
  }
  return undefined;
}

export const SERVERS: ServerSpec[] = [
  {
    key: 'ws',
    label: 'raw ws relay',
    protocol: 'ws',
    unavailable: () => undefined,
    start: (o) => single('ws relay', 'ws', ['bench/servers/ws-relay.ts'], {}, o.nodeFlags),
  },
  {
    key: 'peerjs',
    label: 'peerjs-server',
    protocol: 'peerjs',
    unavailable: () => undefined,
    start: (o) => single('peerjs-server', 'peerjs', ['bench/servers/peerjs-server.ts'], {}, o.nodeFlags),
  },
  {
    key: 'socketio',
    label: 'plain socket.io relay',
    protocol: 'seed',
    unavailable: () => undefined,
    start: (o) => single('socket.io relay', 'seed', ['bench/servers/socketio-relay.ts'], {}, o.nodeFlags),
  },
  {
    key: 'sigserve',
    label: 'sigserve (memory)',
    protocol: 'seed',
    unavailable: sigserveBuilt,
    start: (o) => single('sigserve', 'seed', ['dist/cli.js'], sigserveEnv(), o.nodeFlags),
  },
  {
    // The same server with socket.io serving websocket clients too: what the
    // direct websocket engine changes, measured side by side.
    key: 'sigserve-sio',
    label: 'sigserve (memory, WS_ENGINE=socket.io)',
    protocol: 'seed',
    unavailable: sigserveBuilt,
    start: (o) => single('sigserve-sio', 'seed', ['dist/cli.js'], { ...sigserveEnv(), WS_ENGINE: 'socket.io' }, o.nodeFlags),
  },
  {
    key: 'sigserve-cluster',
    label: 'sigserve (cluster, 2 nodes + redis)',
    protocol: 'seed',
    unavailable: () => {
      const missing = sigserveBuilt();
      if (missing) return missing;
      if (!hasCommand('redis-server')) return 'redis-server is not installed (apt-get install redis-server)';
      const help = execFileSync(process.execPath, [CLI, '--help'], { encoding: 'utf8' });
      if (!help.includes('REDIS_URL')) return 'this build of sigserve has no REDIS_URL setting yet (cluster mode not available)';
      return undefined;
    },
    start: (o) => startCluster(['dist/cli.js'], o),
  },
];

/** Two nodes of the sigserve at `script` and a real redis-server: sharers on node a, joiners on node b. */
async function startCluster(script: string[], options: StartOptions): Promise<RunningTarget> {
  const redis = new RedisProcess(await freePort());
  const nodes: ServerProcess[] = [];
  const stop = async (): Promise<void> => {
    await Promise.all(nodes.map((n) => n.stop()));
    await redis.stop();
  };
  try {
    await redis.ready();
    for (const name of ['a', 'b']) {
      const port = await freePort();
      const env = { ...sigserveEnv(), PORT: String(port), REDIS_URL: `redis://127.0.0.1:${redis.port}` };
      nodes.push(new ServerProcess({ label: `sigserve node ${name}`, script, env, port, nodeFlags: options.nodeFlags ?? [] }));
    }
    await Promise.all(nodes.map((n) => n.ready()));
    // The log line says which mode a node really runs in; give it a moment to be read.
    for (const node of nodes) {
      const deadline = Date.now() + 3000;
      while (listeningMode(node.output) === undefined && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      const mode = listeningMode(node.output);
      if (mode === 'memory' || mode === undefined) {
        throw new ClusterUnavailable(`${node.label} started in ${mode ?? 'an unknown'} mode despite REDIS_URL`);
      }
    }
  } catch (error) {
    await stop();
    throw error;
  }
  const urls = nodes.map((n) => `http://127.0.0.1:${n.port}`);
  return {
    // Sharers on node a, joiners on node b: every handshake crosses nodes.
    target: { protocol: 'seed', sharerUrl: urls[0]!, joinerUrl: urls[1]!, urls },
    processes: nodes,
    sidePids: [redis.pid],
    memory: async () => sum(await Promise.all(nodes.map((n) => n.memory()))),
    stop,
  };
}

/**
 * Another build of sigserve, from the checkout at `root` (built there,
 * sharing this checkout's node_modules or its own), in memory mode or as a
 * two-node cluster: the duel's rival for an A/B comparison of two versions
 * at the same moment (`--against DIR`, with `--against-cluster` for the
 * cluster). Not part of a normal run.
 */
export function otherBuild(root: string, cluster: boolean): ServerSpec {
  const cli = join(root, 'dist', 'cli.js');
  return {
    key: 'sigserve-other',
    label: `sigserve (${cluster ? 'cluster, 2 nodes + redis' : 'memory'}) from ${root}`,
    protocol: 'seed',
    unavailable: () => (existsSync(cli) ? undefined : `${cli} is missing: build that checkout first`),
    start: (o) => (cluster ? startCluster([cli], o) : single('sigserve-other', 'seed', [cli], sigserveEnv(), o.nodeFlags)),
  };
}

/** Thrown when cluster mode turns out not to be available; the run skips it. */
export class ClusterUnavailable extends Error {}
