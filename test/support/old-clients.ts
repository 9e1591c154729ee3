/**
 * The socket.io clients of the original's era (1.3.7, 1.7.4, 2.5.0),
 * installed under npm aliases, behind one small typed surface.
 * @module
 */
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

/** What the tests use of a 1.x/2.x client socket. */
export interface OldSocket {
  id: string | undefined;
  connected: boolean;
  io: { engine: { transport: { name: string } } };
  on(event: string, listener: (...args: unknown[]) => void): OldSocket;
  once(event: string, listener: (...args: unknown[]) => void): OldSocket;
  off(event: string, listener?: (...args: unknown[]) => void): OldSocket;
  emit(event: string, ...args: unknown[]): OldSocket;
  disconnect(): OldSocket;
}

type OldIo = (url: string, options: Record<string, unknown>) => OldSocket;

export interface OldClient {
  /** The npm alias it is installed under. */
  readonly alias: string;
  /** The version that alias must resolve to. */
  readonly version: string;
  readonly io: OldIo;
}

export const OLD_CLIENTS: readonly OldClient[] = [
  { alias: 'socket.io-client-1.3', version: '1.3.7' },
  { alias: 'socket.io-client-1.7', version: '1.7.4' },
  { alias: 'socket.io-client-2', version: '2.5.0' },
].map(({ alias, version }) => ({ alias, version, io: require(alias) as OldIo }));

/** The version actually installed under an alias. */
export function installedVersion(alias: string): string {
  return (require(`${alias}/package.json`) as { version: string }).version;
}

const open = new Set<OldSocket>();

export type Transports = 'default' | 'websocket';

/** Connects an old client; `default` starts on polling and upgrades. */
export function connectOld(client: OldClient, url: string, transports: Transports, ms = 5000): Promise<OldSocket> {
  const socket = client.io(url, {
    forceNew: true,
    reconnection: false,
    timeout: ms,
    ...(transports === 'websocket' ? { transports: ['websocket'] } : {}),
  });
  open.add(socket);
  return new Promise<OldSocket>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${client.alias}: no connect within ${ms} ms`)), ms);
    socket.once('connect', () => {
      clearTimeout(timer);
      resolve(socket);
    });
    socket.once('connect_error', (error: unknown) => {
      clearTimeout(timer);
      reject(new Error(`${client.alias}: connect_error: ${String(error)}`));
    });
  });
}

/** Disconnects every old client connectOld made. */
export function disconnectOld(): void {
  for (const socket of open) socket.disconnect();
  open.clear();
}

/** The arguments of the next `event` on an old socket, or a rejection after `ms`. */
export function waitOld<T extends unknown[] = unknown[]>(socket: OldSocket, event: string, ms = 3000): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const listener = (...args: unknown[]): void => {
      clearTimeout(timer);
      resolve(args as T);
    };
    const timer = setTimeout(() => {
      socket.off(event, listener);
      reject(new Error(`timed out after ${ms} ms waiting for ${event}`));
    }, ms);
    socket.once(event, listener);
  });
}

/** Emits with an ack callback (old clients have no emitWithAck). */
export function requestOld<T = unknown>(socket: OldSocket, event: string, ...args: unknown[]): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ack for ${event} within 3000 ms`)), 3000);
    socket.emit(event, ...args, (result: T) => {
      clearTimeout(timer);
      resolve(result);
    });
  });
}
