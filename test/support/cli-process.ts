/**
 * The built command (`node dist/cli.js`) as a child process: its output
 * split into lines and parsed as the JSON logs they must be.
 * @module
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { helpText } from '../../src/server/config.js';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const CLI = fileURLToPath(new URL('../../dist/cli.js', import.meta.url));

export interface HelpRow {
  flag: string;
  env: string;
  default: string;
  meaning: string;
}

/** The settings table of `--help`: one row per line that starts with a flag and names a variable. */
export function parseHelp(text: string): HelpRow[] {
  return text
    .split('\n')
    .map((line) => /^(--[a-z0-9-]+)\s+([A-Z][A-Z0-9_]*)\s+(\S+)\s+(.*)$/.exec(line))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => ({ flag: m[1]!, env: m[2]!, default: m[3]!, meaning: m[4]! }));
}

/** Environment variables of the server's settings: never inherited from the test's own environment. */
const SETTING_ENV = new Set(parseHelp(helpText('sigserve')).map((row) => row.env));

export interface LogLine {
  level: number;
  msg?: string;
  [key: string]: unknown;
}

export interface CliProcess {
  readonly child: ChildProcess;
  /** Everything written so far. */
  stdout(): string;
  stderr(): string;
  /** stdout lines parsed as JSON (throws on a line that is not). */
  logs(): LogLine[];
  /** Resolves with the first log line matching `test`, or rejects after `ms`. */
  waitForLog(test: (line: LogLine) => boolean, ms?: number, what?: string): Promise<LogLine>;
  /** Resolves with the exit code (null when killed by a signal), or rejects after `ms`. */
  exit(ms?: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const running = new Set<ChildProcess>();

/** Starts `node dist/cli.js ...args` with only `env` of the server's settings set. */
export function spawnCli(args: string[], env: Record<string, string> = {}, options: { cwd?: string; command?: string[] } = {}): CliProcess {
  const inherited = Object.fromEntries(Object.entries(process.env).filter(([k]) => !SETTING_ENV.has(k)));
  const [command, ...prefix] = options.command ?? [process.execPath, CLI];
  const child = spawn(command!, [...prefix, ...args], {
    cwd: options.cwd ?? ROOT,
    env: { ...inherited, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  running.add(child);
  let out = '';
  let err = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (err += chunk));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('close', (code, signal) => {
      running.delete(child);
      resolve({ code, signal });
    });
  });
  const logs = (): LogLine[] =>
    out
      .split('\n')
      .filter((line) => line.trim() !== '')
      .map((line) => {
        try {
          return JSON.parse(line) as LogLine;
        } catch {
          throw new Error(`not a JSON log line: ${line}`);
        }
      });
  return {
    child,
    stdout: () => out,
    stderr: () => err,
    logs,
    async waitForLog(test, ms = 10_000, what = 'log line') {
      const deadline = Date.now() + ms;
      for (;;) {
        const found = logs().find(test);
        if (found) return found;
        if (child.exitCode !== null || child.signalCode !== null) {
          throw new Error(`process exited (${child.exitCode ?? child.signalCode}) before ${what}; stderr: ${err}; stdout: ${out}`);
        }
        if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}; stderr: ${err}; stdout: ${out}`);
        await new Promise((r) => setTimeout(r, 25));
      }
    },
    async exit(ms = 15_000) {
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`process still running after ${ms} ms; stderr: ${err}`)), ms);
      });
      try {
        return await Promise.race([exited, timeout]);
      } finally {
        clearTimeout(timer);
      }
    },
  };
}

/** Spawns the server and waits for its `listening` line; returns it with the URL. */
export async function startCli(args: string[] = [], env: Record<string, string> = {}): Promise<CliProcess & { url: string; port: number }> {
  const proc = spawnCli(['--host', '127.0.0.1', '--port', '0', ...args], env);
  const line = await proc.waitForLog((l) => l.msg === 'listening', 15_000, "the 'listening' line");
  return Object.assign(proc, { url: String(line['url']), port: Number(line['port']) });
}

/** Kills (by PID) every process spawnCli started that is still running. */
export async function killAll(): Promise<void> {
  const waits = [...running].map(async (child) => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await once(child, 'close');
    }
  });
  running.clear();
  await Promise.all(waits);
}

/** A TCP port that was free on 127.0.0.1 a moment ago. */
export async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  await new Promise((r) => server.close(r));
  return port;
}
