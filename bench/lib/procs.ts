/**
 * Processes the benchmark starts: servers pinned to one core, generator
 * workers to the other, redis-server for cluster mode. Every process is
 * tracked by PID and ended by PID, never by name. CPU time comes from
 * /proc/<pid>/stat (utime + stime, every thread of the process).
 * @module
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync, readFileSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const PROBE = fileURLToPath(new URL('../servers/probe.ts', import.meta.url));

/** Core the servers run on, and the one the generator runs on. */
export const SERVER_CPU = '0';
export const GENERATOR_CPU = '1';

const CLK_TCK = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/** CPU seconds (user + system) a process has used so far. */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // The command name may hold spaces and parentheses: fields start after the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // utime and stime are fields 14 and 15 of the line; here indices 11 and 12.
  return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
}

/** Summed CPU seconds of several processes. */
export function totalCpuSeconds(pids: readonly number[]): number {
  let sum = 0;
  for (const pid of pids) sum += cpuSeconds(pid);
  return sum;
}

/**
 * Seconds a process spent runnable but waiting for a CPU (/proc/<pid>/schedstat,
 * main thread). On a pinned process this is the time other work on its core took
 * from it: the measure of how noisy the machine was.
 */
export function runQueueSeconds(pid: number | 'self'): number {
  try {
    return Number(readFileSync(`/proc/${pid}/schedstat`, 'utf8').split(' ')[1]) / 1e9;
  } catch {
    return NaN;
  }
}

export function rssBytes(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const match = /^VmRSS:\s+(\d+) kB/m.exec(status);
  return match ? Number(match[1]) * 1024 : NaN;
}

/** A free TCP port on 127.0.0.1 (free when asked; the caller binds it right after). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Resolves once something accepts TCP connections on 127.0.0.1:port. */
export async function waitForPort(port: number, timeoutMs: number, alive: () => boolean): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const socket = createConnection({ host: '127.0.0.1', port });
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (ok) return;
    if (!alive()) throw new Error(`process exited before listening on ${port}`);
    if (Date.now() > deadline) throw new Error(`nothing listening on ${port} after ${timeoutMs} ms`);
    await sleep(50);
  }
}

/** What the probe preloaded into each server answers. */
export interface MemorySample {
  rss: number;
  heapUsed: number;
  heapTotal: number;
  external: number;
  arrayBuffers: number;
}

const started = new Set<ChildProcess>();

/** Records a child process so killAll can end it. */
export function track(child: ChildProcess): ChildProcess {
  started.add(child);
  child.once('exit', () => started.delete(child));
  return child;
}

/** Ends every process this module started that is still running (by PID). */
export function killAll(): void {
  for (const child of started) {
    if (child.exitCode === null && child.signalCode === null && child.pid) {
      try {
        process.kill(child.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }
  started.clear();
}

export interface ServerProcessOptions {
  label: string;
  /** The script and its arguments, after node's own flags. */
  script: string[];
  env: Record<string, string>;
  port: number;
  /** Extra node flags, e.g. --cpu-prof. */
  nodeFlags?: string[];
}

/** Where every server's output is also written (`--server-log`), e.g. for `--server-flags=--trace-gc`; undefined: nowhere. */
let serverLogDir: string | undefined;

/** Writes the output of every server started from now on to `<dir>/<label>-<pid>.log`. */
export function keepServerOutput(dir: string): void {
  serverLogDir = dir;
}

/** A server process, pinned to SERVER_CPU, with the memory probe preloaded. */
export class ServerProcess {
  readonly child: ChildProcess;
  readonly label: string;
  readonly port: number;
  #output = '';
  #nextRequest = 0;
  readonly #pending = new Map<number, (reply: unknown) => void>();

  constructor(options: ServerProcessOptions) {
    this.label = options.label;
    this.port = options.port;
    const env: NodeJS.ProcessEnv = { ...process.env, ...options.env };
    delete env['NODE_OPTIONS'];
    this.child = spawn(
      'taskset',
      ['-c', SERVER_CPU, process.execPath, '--expose-gc', '--import', 'tsx', '--import', PROBE, ...(options.nodeFlags ?? []), ...options.script],
      { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe', 'ipc'] },
    );
    started.add(this.child);
    // Drained always, or a chatty server would block on a full pipe; kept short for error messages.
    const log = serverLogDir && join(serverLogDir, `${options.label.replace(/[^\w-]+/g, '_')}-${this.child.pid}.log`);
    const keep = (chunk: Buffer): void => {
      this.#output = (this.#output + chunk.toString()).slice(-20000);
      if (log) appendFileSync(log, chunk);
    };
    this.child.stdout!.on('data', keep);
    this.child.stderr!.on('data', keep);
    this.child.on('message', (message: { id?: number }) => {
      if (typeof message?.id !== 'number') return;
      this.#pending.get(message.id)?.(message);
      this.#pending.delete(message.id);
    });
    this.child.on('error', () => {});
  }

  get pid(): number {
    return this.child.pid!;
  }

  get alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  get output(): string {
    return this.#output;
  }

  async ready(timeoutMs = 30000): Promise<void> {
    try {
      await waitForPort(this.port, timeoutMs, () => this.alive);
    } catch (error) {
      throw new Error(`${this.label}: ${(error as Error).message}\n${this.#output.slice(-3000)}`);
    }
  }

  #ask<T>(request: Record<string, unknown>, timeoutMs = 120000): Promise<T> {
    const id = this.#nextRequest++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new Error(`${this.label}: probe did not answer ${String(request['probe'])}`));
      }, timeoutMs);
      this.#pending.set(id, (reply) => {
        clearTimeout(timer);
        resolve(reply as T);
      });
      this.child.send({ ...request, id });
    });
  }

  /** Memory after two full garbage collections. */
  memory(): Promise<MemorySample> {
    return this.#ask<MemorySample>({ probe: 'memory' });
  }

  heapSnapshot(path: string): Promise<void> {
    return this.#ask<void>({ probe: 'snapshot', path }, 600000);
  }

  cpuSeconds(): number {
    return cpuSeconds(this.pid);
  }

  /** Asks the process to exit (so --cpu-prof gets written), then kills it by PID. */
  async stop(timeoutMs = 10000): Promise<void> {
    if (!this.alive) return;
    const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    if (this.child.connected) this.child.send({ probe: 'exit' });
    else this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), timeoutMs);
    await exited;
    clearTimeout(timer);
    started.delete(this.child);
  }
}

/** redis-server on a free loopback port, no persistence, pinned with the servers. */
export class RedisProcess {
  readonly child: ChildProcess;
  readonly port: number;
  #output = '';

  constructor(port: number) {
    this.port = port;
    this.child = spawn(
      'taskset',
      ['-c', SERVER_CPU, 'redis-server', '--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--daemonize', 'no'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    started.add(this.child);
    const keep = (chunk: Buffer): void => {
      this.#output = (this.#output + chunk.toString()).slice(-5000);
    };
    this.child.stdout!.on('data', keep);
    this.child.stderr!.on('data', keep);
    this.child.on('error', () => {});
  }

  get pid(): number {
    return this.child.pid!;
  }

  get alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  async ready(): Promise<void> {
    try {
      await waitForPort(this.port, 15000, () => this.alive);
    } catch (error) {
      throw new Error(`redis-server: ${(error as Error).message}\n${this.#output}`);
    }
  }

  async stop(): Promise<void> {
    if (!this.alive) return;
    const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
    started.delete(this.child);
  }
}

/** Whether a command exists on PATH. */
export function hasCommand(command: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

