/**
 * The low-level client: the socket.io protocol of src/protocol, typed, with
 * every request answered by a Promise (an ack with a timeout) and failures as
 * {@link SignalingClientError}s carrying the server's stable code.
 *
 * After a dropped connection socket.io reconnects by itself with a new
 * socket id, which the server knows nothing about; this client then shares
 * every name it still shares again, under the same name and for what is
 * left of its lifetime, so the application does nothing.
 * @module
 */
import { io, type ManagerOptions, type Socket, type SocketOptions } from 'socket.io-client';
import type {
  AckResult,
  ClientEventName,
  ClientToServerEvents,
  JoinerUID,
  ServerToClientEvents,
  ShareGranted,
  ShareName,
  ShareOptions,
  SignalMessage,
  SignalingErrorBody,
} from '../protocol/index.js';
import { isErrorCode } from '../protocol/index.js';
import { Emitter } from './emitter.js';
import { SignalingClientError } from './errors.js';
import { abortReason } from './util.js';

export type SignalingSocket = Socket<ServerToClientEvents, ClientToServerEvents>;

export interface SignalingClientOptions {
  /**
   * How long a request may wait for its ack, including any wait for the
   * connection, in milliseconds.
   * @default 10000
   */
  requestTimeout?: number;
  /**
   * Share again, after a reconnection, every name this client still shares.
   * @default true
   */
  restoreShares?: boolean;
  /**
   * socket.io-client options, over these defaults: `transports:
   * ['websocket', 'polling']` (websocket first: it needs no sticky sessions
   * behind a load balancer), `tryAllTransports: true`, `forceNew: true`.
   * Ignored when the client is given a socket.
   */
  socket?: Partial<ManagerOptions & SocketOptions>;
}

/** Per-request options. */
export interface RequestOptions {
  /** Overrides the client's requestTimeout for this request, in milliseconds. */
  timeout?: number;
  /** Cancels the wait; the request may still reach the server. */
  signal?: AbortSignal;
}

/** A share this client holds, as the server granted it. */
export interface ActiveShare {
  name: ShareName;
  /** Expiry in milliseconds since the epoch, by the server's clock. */
  expiresAt: number;
  /** The lifetime granted, in milliseconds. */
  ttl: number;
  maxJoins: number | undefined;
}

export interface SignalingClientEvents {
  /** To a sharer: a joiner's message (its offer, then trickled candidates). */
  launchResponse: (joinerUID: JoinerUID, message: SignalMessage) => void;
  /** To a joiner: its sharer's message (its answer, then trickled candidates). */
  answerResponse: (message: SignalMessage) => void;
  /** A share of this client ran out (also when it ran out while disconnected). */
  shareExpired: (name: ShareName) => void;
  /** Every signalingError the server sends, including `sharer-gone` to joiners. */
  signalingError: (error: SignalingErrorBody) => void;
  /** Connected, the first time and after every reconnection. */
  connected: () => void;
  /** The connection to the server dropped; socket.io reconnects unless told not to. */
  disconnected: (reason: string) => void;
  /** A share was granted again after a reconnection. */
  shareRestored: (share: ActiveShare) => void;
  /** A share could not be granted again after a reconnection. */
  shareLost: (name: ShareName, error: SignalingClientError) => void;
}

interface Pending {
  send(): void;
  fail(error: unknown): void;
}

interface HeldShare {
  maxJoins: number | undefined;
  /** Local clock: when the share ends. Avoids any skew with the server's clock. */
  deadline: number;
}

const DEFAULT_REQUEST_TIMEOUT = 10_000;

export class SignalingClient extends Emitter<SignalingClientEvents> {
  readonly socket: SignalingSocket;
  readonly #ownsSocket: boolean;
  readonly #requestTimeout: number;
  readonly #restoreShares: boolean;
  /** Requests waiting for a connection, in the order they were made. */
  readonly #queue: Pending[] = [];
  /** Requests sent on the current connection, waiting for their ack. */
  readonly #inFlight = new Set<Pending>();
  readonly #shares = new Map<ShareName, HeldShare>();
  readonly #detach: (() => void)[] = [];
  #everConnected = false;
  #closed = false;

  /**
   * @param server the server's base URL (e.g. `https://signal.example.org`),
   *   or a socket.io-client socket the application manages itself.
   */
  constructor(server: string | SignalingSocket, options: SignalingClientOptions = {}) {
    super();
    this.#requestTimeout = options.requestTimeout ?? DEFAULT_REQUEST_TIMEOUT;
    this.#restoreShares = options.restoreShares ?? true;
    if (typeof server === 'string') {
      this.socket = io(server, { transports: ['websocket', 'polling'], tryAllTransports: true, forceNew: true, ...options.socket });
      this.#ownsSocket = true;
    } else {
      this.socket = server;
      this.#ownsSocket = false;
    }
    const socket = this.socket;
    const listen = <K extends keyof ServerToClientEvents>(event: K, listener: ServerToClientEvents[K]): void => {
      socket.on(event, listener as never);
      this.#detach.push(() => socket.off(event, listener as never));
    };
    listen('launchResponse', (uid, message) => this.emit('launchResponse', uid, message));
    listen('answerResponse', (message) => this.emit('answerResponse', message));
    listen('shareExpired', (name) => {
      this.#shares.delete(name);
      this.emit('shareExpired', name);
    });
    listen('signalingError', (error) => this.emit('signalingError', error));
    const onConnect = (): void => this.#onConnect();
    const onDisconnect = (reason: string): void => this.#onDisconnect(reason);
    socket.on('connect', onConnect);
    socket.on('disconnect', onDisconnect);
    this.#detach.push(() => socket.off('connect', onConnect), () => socket.off('disconnect', onDisconnect));
    if (socket.connected) queueMicrotask(() => this.#onConnect());
  }

  get connected(): boolean {
    return this.socket.connected && !this.#closed;
  }

  /** The shares this client holds and will restore after a reconnection. */
  get shares(): ShareName[] {
    return [...this.#shares.keys()];
  }

  /** Resolves once connected (at once when already connected). */
  ready(options: RequestOptions = {}): Promise<void> {
    return this.#request(null, [], options).then(() => undefined);
  }

  /**
   * Shares `name` (or a name the server mints), for `options.ttl` ms.
   * Resolves with what the server granted.
   */
  async share(name?: ShareName, options: ShareOptions & RequestOptions = {}): Promise<ActiveShare> {
    const terms: ShareOptions = {};
    if (options.ttl !== undefined) terms.ttl = options.ttl;
    if (options.maxJoins !== undefined) terms.maxJoins = options.maxJoins;
    const granted = await this.#request<ShareGranted>('share', [name ?? null, terms], options);
    this.#shares.set(granted.name, { maxJoins: options.maxJoins, deadline: Date.now() + granted.ttl });
    return { name: granted.name, expiresAt: granted.expiresAt, ttl: granted.ttl, maxJoins: options.maxJoins };
  }

  /** Stops sharing `name`, or every name; resolves with the names stopped. */
  async unshare(name?: ShareName, options: RequestOptions = {}): Promise<ShareName[]> {
    // Forget first: a reconnection while this is in flight must not restore it.
    if (name === undefined) this.#shares.clear();
    else this.#shares.delete(name);
    const done = await this.#request<{ names: ShareName[] }>('unshare', [name ?? null], options);
    return done.names;
  }

  /**
   * Sends a joiner's message to a sharer of `name`: the first launch of a
   * joinerUID is routed to a random sharer, later ones follow it, in order.
   */
  async launch(name: ShareName, joinerUID: JoinerUID, message: SignalMessage, options: RequestOptions = {}): Promise<void> {
    await this.#request('launch', [name, joinerUID, message], options);
  }

  /** Sends a sharer's message to a joiner routed to this client. */
  async answer(name: ShareName, joinerUID: JoinerUID, message: SignalMessage, options: RequestOptions = {}): Promise<void> {
    await this.#request('answer', [name, joinerUID, message], options);
  }

  /**
   * Stops the client: pending requests fail with `closed`, shares are not
   * restored any more. Disconnects the socket when the client created it
   * (the server then ends its shares); a socket given to the constructor is
   * left as it is.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#shares.clear();
    for (const detach of this.#detach) detach();
    const error = new SignalingClientError('closed');
    for (const pending of [...this.#queue, ...this.#inFlight]) pending.fail(error);
    if (this.#ownsSocket) this.socket.disconnect();
  }

  #onConnect(): void {
    if (this.#closed) return;
    const reconnected = this.#everConnected;
    this.#everConnected = true;
    // Shares first, so they are in place before anything queued meanwhile:
    // with the queue set aside, the restoring requests go out at once.
    const waiting = this.#queue.splice(0);
    if (reconnected && this.#restoreShares) this.#restore();
    this.#queue.unshift(...waiting);
    this.#flush();
    this.emit('connected');
  }

  #onDisconnect(reason: string): void {
    // Acks of requests sent on the lost connection will never come.
    const error = new SignalingClientError('disconnected', `connection to the signaling server lost (${reason})`);
    for (const pending of [...this.#inFlight]) pending.fail(error);
    this.emit('disconnected', reason);
  }

  #restore(): void {
    const now = Date.now();
    for (const [name, held] of [...this.#shares]) {
      const remaining = Math.round(held.deadline - now);
      if (remaining <= 0) {
        this.#shares.delete(name);
        this.emit('shareExpired', name);
        continue;
      }
      const terms: ShareOptions = { ttl: remaining };
      if (held.maxJoins !== undefined) terms.maxJoins = held.maxJoins;
      this.#request<ShareGranted>('share', [name, terms], {}).then(
        (granted) => {
          // Unshared or closed meanwhile: leave it to the unshare.
          if (this.#shares.get(name) !== held) return;
          held.deadline = Date.now() + granted.ttl;
          this.emit('shareRestored', { name, expiresAt: granted.expiresAt, ttl: granted.ttl, maxJoins: held.maxJoins });
        },
        (error: unknown) => {
          if (this.#shares.get(name) !== held) return;
          // A later drop retries anyway; any other failure is final.
          if (error instanceof SignalingClientError && error.code === 'disconnected') return;
          this.#shares.delete(name);
          this.emit('shareLost', name, error instanceof SignalingClientError ? error : new SignalingClientError('internal', String(error), 'share'));
        },
      );
    }
  }

  #flush(): void {
    while (this.#queue.length > 0 && this.socket.connected) this.#queue.shift()!.send();
  }

  /**
   * Emits `event` with an ack once connected (event null: just waits for the
   * connection). Requests go out in the order they were made, and never
   * onto a later connection than the one they were sent on.
   */
  #request<T extends object>(event: ClientEventName | null, args: unknown[], options: RequestOptions): Promise<T> {
    const { signal } = options;
    const timeout = options.timeout ?? this.#requestTimeout;
    return new Promise<T>((resolve, reject) => {
      if (this.#closed) {
        reject(new SignalingClientError('closed', undefined, event ?? undefined));
        return;
      }
      if (signal?.aborted) {
        reject(abortReason(signal));
        return;
      }
      let done = false;
      const settle = (): boolean => {
        if (done) return false;
        done = true;
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        const queued = this.#queue.indexOf(pending);
        if (queued >= 0) this.#queue.splice(queued, 1);
        this.#inFlight.delete(pending);
        return true;
      };
      const pending: Pending = {
        send: () => {
          if (event === null) {
            if (settle()) resolve({} as T);
            return;
          }
          this.#inFlight.add(pending);
          const ack = (result: AckResult<T & { ok: true }>): void => {
            if (!settle()) return;
            if (result && typeof result === 'object' && result.ok === true) {
              resolve(result);
              return;
            }
            const body = (result as { error?: { code?: unknown; message?: unknown } } | undefined)?.error;
            const code = isErrorCode(body?.code) ? body.code : 'internal';
            reject(new SignalingClientError(code, typeof body?.message === 'string' ? body.message : undefined, event));
          };
          (this.socket.emit as (event: string, ...args: unknown[]) => void)(event, ...args, ack);
        },
        fail: (error) => {
          if (settle()) reject(error);
        },
      };
      const onAbort = (): void => pending.fail(abortReason(signal!));
      const timer = setTimeout(() => {
        const waiting = event === null ? 'the connection' : `the ack of ${event}`;
        pending.fail(new SignalingClientError('timeout', `no answer within ${timeout} ms waiting for ${waiting}`, event ?? undefined));
      }, timeout);
      signal?.addEventListener('abort', onAbort, { once: true });
      if (this.socket.connected && this.#queue.length === 0) pending.send();
      else this.#queue.push(pending);
    });
  }
}
