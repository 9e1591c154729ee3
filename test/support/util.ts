/**
 * Test helpers: real servers on port 0, real socket.io clients on loopback.
 * @module
 */
import { once, type EventEmitter } from 'node:events';
import { io, type ManagerOptions, type Socket, type SocketOptions } from 'socket.io-client';
import { pino } from 'pino';
import { loadConfig, type SettingKey } from '../../src/server/config.js';
import { startServer, type RunningServer } from '../../src/server/server.js';
import type { ClientToServerEvents, ServerToClientEvents } from '../../src/protocol/events.js';

export type Settings = Partial<Record<SettingKey, string | number>>;
export type TestSocket = Socket<ServerToClientEvents, ClientToServerEvents>;

/** Starts the real server in this process on 127.0.0.1, a free port, logs silenced unless LOG_LEVEL is set. */
export async function startTestServer(settings: Settings = {}): Promise<RunningServer> {
  const config = loadConfig({ overrides: { port: 0, host: '127.0.0.1', ...settings } });
  const logger = pino({ level: process.env['TEST_LOG_LEVEL'] ?? 'silent' });
  return startServer({ config, logger });
}

const sockets = new Set<TestSocket>();

/** A connected socket.io v4 client (websocket transport unless told otherwise). */
export async function connect(url: string, options: Partial<ManagerOptions & SocketOptions> = {}): Promise<TestSocket> {
  const socket: TestSocket = io(url, { transports: ['websocket'], forceNew: true, reconnection: false, ...options });
  sockets.add(socket);
  if (!socket.connected && socket.io.reconnection()) {
    // A reconnecting client retries past connect_error: wait for it to get in.
    await waitFor(socket, 'connect');
  } else if (!socket.connected) {
    // A refused connection fails at once, with the server's reason.
    await Promise.race([
      waitFor(socket, 'connect'),
      waitFor<[Error]>(socket, 'connect_error').then(([error]) => Promise.reject(error)),
    ]);
  }
  return socket;
}

/** Disconnects every client `connect` made; call from after()/afterEach(). */
export function disconnectAll(): void {
  for (const socket of sockets) socket.disconnect();
  sockets.clear();
}

/** Resolves with the arguments of the next `event`, or rejects after `ms`. */
export async function waitFor<T extends unknown[] = unknown[]>(emitter: EventEmitter | TestSocket, event: string, ms = 3000): Promise<T> {
  const signal = AbortSignal.timeout(ms);
  if ('io' in emitter) {
    return new Promise<T>((resolve, reject) => {
      const onAbort = (): void => {
        (emitter as Socket).off(event, listener);
        reject(new Error(`timed out after ${ms} ms waiting for ${event}`));
      };
      const listener = (...args: unknown[]): void => {
        signal.removeEventListener('abort', onAbort);
        resolve(args as T);
      };
      (emitter as Socket).once(event, listener);
      signal.addEventListener('abort', onAbort, { once: true });
    });
  }
  return (await once(emitter, event, { signal })) as T;
}

/** Collects every `event` a socket receives, in order. */
export function collect<T extends unknown[] = unknown[]>(socket: TestSocket, event: string): T[] {
  const seen: T[] = [];
  socket.on(event as 'launchResponse', (...args: unknown[]) => seen.push(args as T));
  return seen;
}

/** Emits with an ack and resolves with what the server acked. */
export function request<T = unknown>(socket: TestSocket, event: string, ...args: unknown[]): Promise<T> {
  return (socket.timeout(3000) as unknown as { emitWithAck(e: string, ...a: unknown[]): Promise<T> }).emitWithAck(event, ...args);
}

/** Polls `check` until it returns true, or fails after `ms`. */
export async function eventually(check: () => boolean | Promise<boolean>, ms = 3000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
