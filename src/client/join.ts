/**
 * The joiner side: open a link, get an open RTCPeerConnection and
 * RTCDataChannel to one of its sharers.
 * @module
 */
import type { JoinerUID, ShareName, SignalingErrorBody } from '../protocol/index.js';
import { SignalingClientError } from './errors.js';
import { PeerNegotiation, readSignal, type PeerLink, type PeerOptions, type Signal } from './peer-negotiation.js';
import { SignalingClient, type SignalingClientOptions } from './signaling-client.js';
import { randomId, withDeadline } from './util.js';

export interface JoinOptions extends PeerOptions {
  /** A client to signal through, or the server's URL (a client is then made and closed after). */
  client: SignalingClient | string;
  /** Options of the client made from a URL. */
  clientOptions?: SignalingClientOptions;
  /** The link name to join. */
  name: ShareName;
  /**
   * Longest wait for an open data channel, all attempts included, in ms.
   * @default 30000
   */
  timeout?: number;
  /** Cancels the join; the promise rejects with the signal's reason. */
  signal?: AbortSignal;
  /**
   * Attempts in all: a new attempt starts (with a fresh joinerUID) when the
   * sharer disconnects mid-handshake or the connection to the server drops.
   * @default 3
   */
  attempts?: number;
  /** Called with each attempt's RTCPeerConnection as soon as it exists, to watch its states. */
  onConnection?: (connection: RTCPeerConnection, joinerUID: JoinerUID) => void;
}

export interface JoinedPeer extends PeerLink {
  name: ShareName;
  /** The joinerUID of the attempt that succeeded. */
  joinerUID: JoinerUID;
}

/**
 * Joins `options.name`: sends an offer through the server to one of its
 * sharers, trickles ICE candidates, and resolves once the data channel is
 * open. Rejects with a SignalingClientError: `no-sharer` when nobody shares
 * the name (or its share expired), `share-full`, `timeout`, `peer-failed`.
 */
export async function join(options: JoinOptions): Promise<JoinedPeer> {
  const owned = typeof options.client === 'string';
  const client = typeof options.client === 'string' ? new SignalingClient(options.client, options.clientOptions) : options.client;
  const attempts = Math.max(1, options.attempts ?? 3);
  let joined = false;
  try {
    const peer = await withDeadline(options.timeout ?? 30_000, options.signal, `joining ${JSON.stringify(options.name)}`, async (signal) => {
      let lastError: unknown;
      for (let attempt = 1; attempt <= attempts; attempt++) {
        await client.ready({ signal, timeout: 2 ** 31 - 1 });
        try {
          return await attemptJoin(client, options, signal);
        } catch (error) {
          lastError = error;
          if (signal.aborted || !(error instanceof SignalingClientError) || !retryable.has(error.code)) throw error;
        }
      }
      throw lastError;
    });
    joined = true;
    return peer;
  } finally {
    // After success the sharer may still be trickling its last candidates:
    // leaving a moment later spares it answers to a joiner already gone.
    if (owned) setTimeout(() => client.close(), joined ? OWNED_CLIENT_LINGER : 0);
  }
}

/** How long a client join() made itself stays connected after success, in ms. */
const OWNED_CLIENT_LINGER = 1000;

/** Failures after which a fresh attempt may succeed. */
const retryable = new Set(['sharer-gone', 'disconnected', 'uid-taken']);

async function attemptJoin(client: SignalingClient, options: JoinOptions, signal: AbortSignal): Promise<JoinedPeer> {
  const uid = randomId();
  const { name } = options;
  const negotiation = new PeerNegotiation({
    ...options,
    role: 'joiner',
    // The name rides along so a client sharing several names can tell them apart.
    send: (s: Signal) => client.launch(name, uid, { ...s, name }, { signal }),
  });
  const stop: (() => void)[] = [
    client.on('answerResponse', (message) => {
      // Answers carry the joinerUID they are for: one client may join several links at once.
      if ((message as { uid?: unknown } | null)?.uid !== uid) return;
      const s = readSignal(message);
      if (s) void negotiation.receive(s);
    }),
    client.on('signalingError', (error: SignalingErrorBody) => {
      if (error.code === 'sharer-gone' && error.joinerUID === uid) {
        negotiation.fail(new SignalingClientError('sharer-gone', error.message, 'launch'));
      }
    }),
    client.on('disconnected', (reason) => negotiation.fail(new SignalingClientError('disconnected', `connection to the signaling server lost (${reason})`))),
  ];
  const onAbort = (): void => negotiation.fail(signal.reason);
  signal.addEventListener('abort', onAbort, { once: true });
  try {
    options.onConnection?.(negotiation.connection, uid);
    void negotiation.start();
    const link = await negotiation.opened;
    return { ...link, name, joinerUID: uid };
  } finally {
    signal.removeEventListener('abort', onAbort);
    for (const s of stop) s();
  }
}
