/**
 * The `membership` interface of the original README, and adapters both ways.
 *
 * The original server's README showed peer-to-peer network code (libraries
 * following the p2pnetwork specification, such as spray-wrtc) glued to the
 * server by hand: the joiner calls `membership.launch(cb)` and sends each
 * message `cb` receives with `launch`; the sharer hands each
 * `launchResponse` to `membership.answer(message, cb)` and sends what `cb`
 * receives with `answer`; the joiner hands each `answerResponse` to
 * `membership.handshake(message)`. The messages are opaque to the server and
 * carry their own correlation (spray's tickets carry an `id`).
 *
 * - {@link shareMembership} and {@link joinMembership} are that glue, on the
 *   typed client: an existing Membership keeps working unchanged, and gains
 *   acks, timeouts, cancellation and share restoration after reconnects.
 * - {@link WebRtcMembership} is a Membership whose connections are this
 *   library's WebRTC negotiations (trickle ICE included), for code written
 *   against the interface, the README's hand-written glue among it.
 * @module
 */
import type { JoinerUID, ShareName, SignalMessage } from '../protocol/index.js';
import { Emitter } from './emitter.js';
import { SignalingClientError } from './errors.js';
import { PeerNegotiation, readSignal, resolvePeerClass, type PeerLink, type PeerOptions, type Signal } from './peer-negotiation.js';
import type { RequestOptions, SignalingClient } from './signaling-client.js';
import { randomId, withDeadline } from './util.js';

/**
 * A peer-to-peer network's entry point, as the original README used it.
 * Callbacks may be called several times (one call per trickled message).
 */
export interface Membership {
  /** Joiner: starts joining; `callback` receives each message for the sharer. */
  launch(callback: (message: SignalMessage) => void): void;
  /** Sharer: takes a joiner's message; `callback` receives each reply for that joiner. */
  answer(message: SignalMessage, callback: (message: SignalMessage) => void): void;
  /** Joiner: takes one of the sharer's replies, completing the connection. */
  handshake(message: SignalMessage): void;
}

export interface MembershipShareOptions {
  /** The link name; the server mints one when absent. */
  name?: ShareName;
  ttl?: number;
  maxJoins?: number;
  signal?: AbortSignal;
}

export interface MembershipShare {
  readonly name: ShareName;
  readonly expiresAt: number;
  /** Stops relaying and unshares. */
  close(): Promise<void>;
}

/**
 * Shares a link for `membership`: every joiner message goes to
 * `membership.answer`, every reply back to that joiner. One shared name per
 * client: launchResponse does not say which name a joiner launched for.
 */
export async function shareMembership(client: SignalingClient, membership: Membership, options: MembershipShareOptions = {}): Promise<MembershipShare> {
  const request: RequestOptions & { ttl?: number; maxJoins?: number } = {};
  if (options.ttl !== undefined) request.ttl = options.ttl;
  if (options.maxJoins !== undefined) request.maxJoins = options.maxJoins;
  if (options.signal) request.signal = options.signal;
  const granted = await client.share(options.name, request);
  const name = granted.name;
  const stop = client.on('launchResponse', (uid: JoinerUID, message) => {
    membership.answer(message, (reply) => {
      // A joiner that left makes its answers fail; that is no one else's problem.
      client.answer(name, uid, reply).catch(() => undefined);
    });
  });
  let closed = false;
  const close = async (): Promise<void> => {
    if (closed) return;
    closed = true;
    stop();
    options.signal?.removeEventListener('abort', onAbort);
    await client.unshare(name, { timeout: 2000 }).catch(() => undefined);
  };
  const onAbort = (): void => void close();
  options.signal?.addEventListener('abort', onAbort, { once: true });
  return {
    name,
    get expiresAt() {
      return granted.expiresAt;
    },
    close,
  };
}

export interface MembershipJoinOptions {
  name: ShareName;
  /** Defaults to a random id. */
  joinerUID?: JoinerUID;
  /**
   * Longest wait for the sharer's first reply, in ms.
   * @default 30000
   */
  timeout?: number;
  signal?: AbortSignal;
}

export interface MembershipJoin {
  readonly joinerUID: JoinerUID;
  /** Stops handing further replies (trickled candidates) to `handshake`. */
  close(): void;
}

/**
 * Joins a link for `membership`: `membership.launch`'s messages go to a
 * sharer of `options.name`, its replies to `membership.handshake`. Resolves
 * once the first reply was handed over; later replies keep flowing until
 * `close()`. Rejects with the server's code (`no-sharer`, ...) when the
 * first launch fails. One such join per client at a time: answerResponse
 * does not say which launch it answers.
 */
export function joinMembership(client: SignalingClient, membership: Membership, options: MembershipJoinOptions): Promise<MembershipJoin> {
  const uid = options.joinerUID ?? randomId();
  let stop: (() => void)[] = [];
  const close = (): void => {
    for (const s of stop) s();
    stop = [];
  };
  return withDeadline(options.timeout ?? 30_000, options.signal, `joining ${JSON.stringify(options.name)}`, (signal) => {
    return new Promise<MembershipJoin>((resolve, reject) => {
      signal.addEventListener('abort', close, { once: true });
      stop.push(
        client.on('answerResponse', (message) => {
          membership.handshake(message);
          resolve({ joinerUID: uid, close });
        }),
        client.on('signalingError', (error) => {
          if (error.code === 'sharer-gone' && error.joinerUID === uid) {
            close();
            reject(new SignalingClientError('sharer-gone', error.message, 'launch'));
          }
        }),
      );
      membership.launch((message) => {
        client.launch(options.name, uid, message).catch((error: unknown) => {
          close();
          reject(error);
        });
      });
    });
  }).catch((error: unknown) => {
    close();
    throw error;
  });
}

export interface WebRtcMembershipOptions extends PeerOptions {
  /**
   * Longest time from the first message to an open data channel, in ms.
   * @default 30000
   */
  connectTimeout?: number;
}

export interface WebRtcMembershipEvents {
  /** A data channel opened, on either side. `id` is the negotiation's id. */
  connection: (peer: PeerLink & { id: string }) => void;
  failed: (id: string, error: unknown) => void;
}

/**
 * A Membership made of WebRTC data channels. Its messages are this
 * library's signals plus the negotiation's `id`: `{ id, description }` or
 * `{ id, candidate }`. Each open channel is emitted as `connection`.
 */
export class WebRtcMembership extends Emitter<WebRtcMembershipEvents> implements Membership {
  readonly #options: WebRtcMembershipOptions;
  readonly #negotiations = new Map<string, PeerNegotiation>();

  constructor(options: WebRtcMembershipOptions = {}) {
    super();
    resolvePeerClass(options);
    this.#options = options;
  }

  launch(callback: (message: SignalMessage) => void): void {
    const id = randomId();
    const negotiation = this.#negotiate(id, 'joiner', callback);
    void negotiation.start();
  }

  answer(message: SignalMessage, callback: (message: SignalMessage) => void): void {
    const parsed = this.#read(message);
    if (!parsed) return;
    let negotiation = this.#negotiations.get(parsed.id);
    if (!negotiation) {
      if (!('description' in parsed.signal) || parsed.signal.description.type !== 'offer') return;
      // Later calls for the same id reply through this first callback.
      negotiation = this.#negotiate(parsed.id, 'sharer', callback);
    }
    void negotiation.receive(parsed.signal);
  }

  handshake(message: SignalMessage): void {
    const parsed = this.#read(message);
    if (parsed) void this.#negotiations.get(parsed.id)?.receive(parsed.signal);
  }

  /** Abandons every negotiation still under way. */
  close(): void {
    for (const negotiation of this.#negotiations.values()) negotiation.fail(new SignalingClientError('closed'));
    this.#negotiations.clear();
  }

  #read(message: SignalMessage): { id: string; signal: Signal } | undefined {
    const id = (message as { id?: unknown } | null)?.id;
    const signal = readSignal(message);
    return typeof id === 'string' && signal ? { id, signal } : undefined;
  }

  #negotiate(id: string, role: 'joiner' | 'sharer', callback: (message: SignalMessage) => void): PeerNegotiation {
    const negotiation = new PeerNegotiation({ ...this.#options, role, send: (signal) => callback({ id, ...signal }) });
    this.#negotiations.set(id, negotiation);
    const timeout = this.#options.connectTimeout ?? 30_000;
    const timer = setTimeout(() => negotiation.fail(new SignalingClientError('timeout', `no connection within ${timeout} ms`)), timeout);
    negotiation.opened.then(
      (link) => {
        clearTimeout(timer);
        this.#negotiations.delete(id);
        this.emit('connection', { ...link, id });
      },
      (error: unknown) => {
        clearTimeout(timer);
        this.#negotiations.delete(id);
        this.emit('failed', id, error);
      },
    );
    return negotiation;
  }
}
