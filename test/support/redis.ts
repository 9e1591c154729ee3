/**
 * A real Debian `redis-server` for tests: a free loopback port, persistence
 * off, stopped by its PID. `restart` stops it and starts a fresh (empty) one
 * on the same port, as after a crash of a Redis without persistence.
 * @module
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';

export interface TestRedis {
  readonly port: number;
  readonly url: string;
  /** PID of the running redis-server. */
  readonly pid: number;
  /** A client for the test to inspect keys with (closed by stop()). */
  client(): Redis;
  /** Stops the server (SIGKILL when `hard`), then starts an empty one on the same port. */
  restart(options?: { hard?: boolean; downMs?: number }): Promise<void>;
  /** Stops the server without starting it again (for outage tests). */
  halt(): Promise<void>;
  /** Starts it again after halt(). */
  resume(): Promise<void>;
  stop(): Promise<void>;
}

const INSTALL = 'apt-get install -y redis-server (or: bash scripts/install-test-deps.sh)';

/** Throws with the install command when redis-server is missing (never skips under CI=true). */
export function requireRedisServer(): string {
  const found = spawnSync('redis-server', ['--version'], { encoding: 'utf8' });
  if (found.error || found.status !== 0) throw new Error(`redis-server is not installed; run: ${INSTALL}`);
  return found.stdout.trim();
}

export async function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, host, () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

function launch(port: number, dir: string): Promise<ChildProcess> {
  const child = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, '--loglevel', 'warning', '--daemonize', 'no'],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
  return new Promise((resolve, reject) => {
    const deadline = Date.now() + 10_000;
    const onExit = (code: number | null): void => reject(new Error(`redis-server exited (${code}) at start: ${output.slice(-500)}`));
    child.once('exit', onExit);
    const probe = async (): Promise<void> => {
      const client = new Redis({ port, host: '127.0.0.1', lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0 });
      client.on('error', () => undefined);
      try {
        await client.connect();
        await client.ping();
        child.off('exit', onExit);
        resolve(child);
      } catch {
        if (Date.now() > deadline) {
          child.kill('SIGKILL');
          reject(new Error(`redis-server did not answer on port ${port}: ${output.slice(-500)}`));
        } else setTimeout(() => void probe(), 50);
      } finally {
        client.disconnect();
      }
    };
    void probe();
  });
}

async function kill(child: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  process.kill(child.pid!, signal);
  const timer = setTimeout(() => child.exitCode === null && child.signalCode === null && process.kill(child.pid!, 'SIGKILL'), 5000);
  await exited;
  clearTimeout(timer);
}

export async function startRedis(): Promise<TestRedis> {
  requireRedisServer();
  const dir = mkdtempSync(join(tmpdir(), 'sigserve-redis-'));
  const port = await freePort();
  let child: ChildProcess | undefined = await launch(port, dir);
  const clients: Redis[] = [];
  const halt = async (hard = false): Promise<void> => {
    if (child) await kill(child, hard ? 'SIGKILL' : 'SIGTERM');
    child = undefined;
  };
  const resume = async (): Promise<void> => {
    child ??= await launch(port, dir);
  };
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    get pid() {
      return child?.pid ?? -1;
    },
    client() {
      const client = new Redis({ port, host: '127.0.0.1', maxRetriesPerRequest: 1 });
      client.on('error', () => undefined);
      clients.push(client);
      return client;
    },
    async restart(options = {}) {
      await halt(options.hard);
      if (options.downMs) await new Promise((r) => setTimeout(r, options.downMs));
      await resume();
    },
    halt: () => halt(false),
    resume,
    async stop() {
      for (const c of clients) c.disconnect();
      await halt(false);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Every key under `prefix` (SCAN, never KEYS). */
export async function keysUnder(client: Redis, prefix: string): Promise<string[]> {
  const found: string[] = [];
  let cursor = '0';
  do {
    const [next, keys] = await client.scan(cursor, 'MATCH', `${prefix.replace(/[*?[\]\\]/g, '\\$&')}*`, 'COUNT', 1000);
    cursor = next;
    found.push(...keys);
  } while (cursor !== '0');
  return found.sort();
}
