/**
 * The sharer side: share a link, accept joiners, get one open
 * RTCPeerConnection and RTCDataChannel per joiner.
 * @module
 */
import type { JoinerUID, ShareName } from '../protocol/index.js';
import { Emitter } from './emitter.js';
import { SignalingClientError } from './errors.js';
import { PeerNegotiation, readSignal, resolvePeerClass, type PeerLink, type PeerOptions, type Signal } from './peer-negotiation.js';
import { SignalingClient, type RequestOptions, type SignalingClientOptions } from './signaling-client.js';
import { abortReason } from './util.js';

export interface ShareLinkOptions extends PeerOptions {
  /** A client to signal through, or the server's URL (a client is then made, and closed by `close()`). */
  client: SignalingClient | string;
  /** Options of the client made from a URL. */
  clientOptions?: SignalingClientOptions;
  /** The link name; the server mints an unguessable one when absent. */
  name?: ShareName;
  /** Requested lifetime in ms, capped by the server; the server's default when absent. */
  ttl?: number;
  /** How many joiners the share admits; unlimited when absent. */
  maxJoins?: number;
  /**
   * Longest time from a joiner's offer to its open data channel, in ms.
   * @default 30000
   */
  connectTimeout?: number;
  /**
   * Joiners negotiating at once; offers beyond it are ignored (those
   * joiners time out) so a flood of offers cannot exhaust the sharer.
   * @default 32
   */
  maxPending?: number;
  /** Aborting stops sharing, as `close()` does. */
  signal?: AbortSignal;
  /** Timeout of the share request itself, in ms. @default the client's requestTimeout */
  requestTimeout?: number;
}

/** One joiner, connected. */
export interface SharedPeer extends PeerLink {
  joinerUID: JoinerUID;
}

export interface SharerEvents {
  /** A joiner's data channel is open. */
  peer: (peer: SharedPeer) => void;
  /** A joiner's offer arrived; its connection exists from now on. */
  negotiating: (joinerUID: JoinerUID, connection: RTCPeerConnection) => void;
  /** A joiner's negotiation failed or timed out. */
  peerFailed: (joinerUID: JoinerUID, error: unknown) => void;
  /** The share's lifetime ran out; joiners already negotiating may still finish. */
  expired: () => void;
  /** The share was granted again after a reconnection to the server. */
  restored: (expiresAt: number) => void;
  /** The share could not be granted again after a reconnection. */
  lost: (error: SignalingClientError) => void;
  /** close() was called, or the signal aborted. */
  closed: () => void;
}

/**
 * Shares a link and accepts joiners. Resolves once the server granted the
 * share; then every joiner that connects is yielded by `peers()` (or `accept()`)
 * and emitted as `peer`.
 */
export async function share(options: ShareLinkOptions): Promise<Sharer> {
  resolvePeerClass(options);
  const owned = typeof options.client === 'string';
  const client = typeof options.client === 'string' ? new SignalingClient(options.client, options.clientOptions) : options.client;
  try {
    const request: RequestOptions & { ttl?: number; maxJoins?: number } = {};
    if (options.ttl !== undefined) request.ttl = options.ttl;
    if (options.maxJoins !== undefined) request.maxJoins = options.maxJoins;
    if (options.signal) request.signal = options.signal;
    if (options.requestTimeout !== undefined) request.timeout = options.requestTimeout;
    const granted = await client.share(options.name, request);
    return new Sharer(client, owned, granted.name, granted.expiresAt, options);
  } catch (error) {
    if (owned) client.close();
    throw error;
  }
}

interface Waiter {
  resolve: (result: IteratorResult<SharedPeer>) => void;
}

/** Peers kept for a `peers()` iterator not yet asking; the oldest are dropped past this. */
const MAX_BUFFERED_PEERS = 1024;

export class Sharer extends Emitter<SharerEvents> implements AsyncIterable<SharedPeer> {
  readonly name: ShareName;
  readonly client: SignalingClient;
  readonly #owned: boolean;
  readonly #options: ShareLinkOptions;
  readonly #pending = new Map<JoinerUID, PeerNegotiation>();
  readonly #buffer: SharedPeer[] = [];
  readonly #waiters: Waiter[] = [];
  readonly #stop: (() => void)[] = [];
  #expiresAt: number;
  /** No new joiners will come: expired, lost or closed. */
  #ended = false;
  #closed = false;

  /** @internal Use {@link share}. */
  constructor(client: SignalingClient, owned: boolean, name: ShareName, expiresAt: number, options: ShareLinkOptions) {
    super();
    this.client = client;
    this.#owned = owned;
    this.name = name;
    this.#expiresAt = expiresAt;
    this.#options = options;
    this.#stop.push(
      client.on('launchResponse', (uid, message) => this.#onLaunch(uid, message)),
      client.on('shareExpired', (expired) => {
        if (expired !== this.name) return;
        this.#end();
        this.emit('expired');
      }),
      client.on('shareRestored', (restored) => {
        if (restored.name !== this.name) return;
        this.#expiresAt = restored.expiresAt;
        this.emit('restored', restored.expiresAt);
      }),
      client.on('shareLost', (lost, error) => {
        if (lost !== this.name) return;
        this.#end();
        this.emit('lost', error);
      }),
      client.on('disconnected', (reason) => {
        // Joiners mid-handshake are told their sharer is gone and start over
        // with a fresh joinerUID: these negotiations cannot finish.
        const error = new SignalingClientError('disconnected', `connection to the signaling server lost (${reason})`);
        for (const negotiation of this.#pending.values()) negotiation.fail(error);
      }),
    );
    const { signal } = options;
    if (signal) {
      const onAbort = (): void => void this.close();
      signal.addEventListener('abort', onAbort, { once: true });
      this.#stop.push(() => signal.removeEventListener('abort', onAbort));
    }
  }

  /** When the share ends, in milliseconds since the epoch (server clock). */
  get expiresAt(): number {
    return this.#expiresAt;
  }

  /** Joiners currently negotiating. */
  get pending(): number {
    return this.#pending.size;
  }

  /** True once no new joiner can come (expired, lost or closed). */
  get ended(): boolean {
    return this.#ended;
  }

  /**
   * Every joiner that connects, in order. The iteration ends when the share
   * ends (expiry, close) and no joiner is still negotiating.
   */
  peers(): AsyncIterableIterator<SharedPeer> {
    const iterator: AsyncIterableIterator<SharedPeer> = {
      next: () => this.#next(),
      return: async () => ({ done: true, value: undefined }),
      [Symbol.asyncIterator]: () => iterator,
    };
    return iterator;
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<SharedPeer> {
    return this.peers();
  }

  /** The next joiner to connect. Rejects with `closed` once the share ended and none is left. */
  async accept(options: { signal?: AbortSignal } = {}): Promise<SharedPeer> {
    const { signal } = options;
    if (signal?.aborted) throw abortReason(signal);
    const next = this.#next();
    if (!signal) return unwrap(await next);
    return unwrap(
      await new Promise<IteratorResult<SharedPeer>>((resolve, reject) => {
        const onAbort = (): void => reject(abortReason(signal));
        signal.addEventListener('abort', onAbort, { once: true });
        next.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
      }),
    );
  }

  /**
   * Stops sharing: unshares the name, abandons joiners still negotiating and
   * ends `peers()`. Peers already connected stay open: they are yours.
   * Closes the client when `share()` made it from a URL.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#end();
    for (const stop of this.#stop) stop();
    for (const negotiation of this.#pending.values()) negotiation.fail(new SignalingClientError('closed'));
    this.#pending.clear();
    this.#finishIfDone();
    try {
      if (this.client.connected) await this.client.unshare(this.name, { timeout: 2000 });
    } catch {
      // Leaving anyway: the server ends the share when the socket goes.
    } finally {
      if (this.#owned) this.client.close();
      this.emit('closed');
    }
  }

  #onLaunch(uid: JoinerUID, message: unknown): void {
    if ((message as { name?: unknown } | null)?.name !== this.name) return;
    const signal = readSignal(message);
    if (!signal) return;
    const known = this.#pending.get(uid);
    if (known) {
      void known.receive(signal);
      return;
    }
    // Only an offer starts a negotiation; a stray candidate is dropped.
    if (!('description' in signal) || signal.description.type !== 'offer') return;
    if (this.#closed || this.#pending.size >= (this.#options.maxPending ?? 32)) return;
    let negotiation: PeerNegotiation;
    try {
      negotiation = new PeerNegotiation({
        ...this.#options,
        role: 'sharer',
        send: (s: Signal) => this.client.answer(this.name, uid, { ...s, uid }),
      });
    } catch (error) {
      this.emit('peerFailed', uid, error);
      return;
    }
    this.#pending.set(uid, negotiation);
    const timeout = this.#options.connectTimeout ?? 30_000;
    const timer = setTimeout(
      () => negotiation.fail(new SignalingClientError('timeout', `joiner ${uid} did not connect within ${timeout} ms`)),
      timeout,
    );
    this.emit('negotiating', uid, negotiation.connection);
    negotiation.opened.then(
      (link) => {
        clearTimeout(timer);
        this.#pending.delete(uid);
        const peer: SharedPeer = { ...link, joinerUID: uid };
        this.emit('peer', peer);
        this.#deliver(peer);
        this.#finishIfDone();
      },
      (error: unknown) => {
        clearTimeout(timer);
        if (this.#pending.get(uid) === negotiation) this.#pending.delete(uid);
        this.emit('peerFailed', uid, error);
        this.#finishIfDone();
      },
    );
    void negotiation.receive(signal);
  }

  #next(): Promise<IteratorResult<SharedPeer>> {
    const buffered = this.#buffer.shift();
    if (buffered) return Promise.resolve({ done: false, value: buffered });
    if (this.#ended && this.#pending.size === 0) return Promise.resolve({ done: true, value: undefined });
    return new Promise((resolve) => this.#waiters.push({ resolve }));
  }

  #deliver(peer: SharedPeer): void {
    const waiter = this.#waiters.shift();
    if (waiter) {
      waiter.resolve({ done: false, value: peer });
      return;
    }
    this.#buffer.push(peer);
    if (this.#buffer.length > MAX_BUFFERED_PEERS) this.#buffer.shift();
  }

  #end(): void {
    this.#ended = true;
    this.#finishIfDone();
  }

  #finishIfDone(): void {
    if (!this.#ended || this.#pending.size > 0) return;
    for (const waiter of this.#waiters.splice(0)) waiter.resolve({ done: true, value: undefined });
  }
}

function unwrap(result: IteratorResult<SharedPeer>): SharedPeer {
  if (result.done) throw new SignalingClientError('closed', 'the share ended and no joiner is left');
  return result.value;
}
