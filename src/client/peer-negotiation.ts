/**
 * One WebRTC negotiation between a joiner (which offers and opens the data
 * channel) and a sharer (which answers), with trickle ICE: descriptions and
 * candidates travel as separate signals, in order, through whatever carries
 * them (launch/answer here, a Membership's callbacks in membership.ts).
 * @module
 */
import { SignalingClientError } from './errors.js';

/** The RTCPeerConnection class to use: the browser's own, or @roamhq/wrtc's in Node. */
export type RTCPeerConnectionClass = new (configuration?: RTCConfiguration) => RTCPeerConnection;

/** WebRTC settings shared by both sides. */
export interface PeerOptions {
  /**
   * The RTCPeerConnection implementation. In Node pass `wrtc.RTCPeerConnection`
   * from `@roamhq/wrtc`.
   * @default globalThis.RTCPeerConnection
   */
  RTCPeerConnection?: RTCPeerConnectionClass;
  /**
   * STUN/TURN servers. None by default: peers on one network connect without
   * them; peers behind different NATs need at least a STUN server.
   * @default []
   */
  iceServers?: RTCIceServer[];
  /** Further RTCPeerConnection settings; `iceServers` above takes precedence. */
  rtcConfiguration?: RTCConfiguration;
  /**
   * Label of the data channel the joiner opens.
   * @default 'sigserve'
   */
  channelLabel?: string;
  /**
   * Options of the data channel the joiner opens.
   * @default { ordered: true }
   */
  channelInit?: RTCDataChannelInit;
}

/** A description or one trickled candidate, as one message on the wire. */
export type Signal = { description: { type: 'offer' | 'answer'; sdp: string } } | { candidate: RTCIceCandidateInit };

/** An open peer-to-peer link. */
export interface PeerLink {
  connection: RTCPeerConnection;
  channel: RTCDataChannel;
}

/** Reads a Signal out of an untrusted message; undefined when it is none. */
export function readSignal(message: unknown): Signal | undefined {
  if (typeof message !== 'object' || message === null) return undefined;
  const { description, candidate } = message as { description?: unknown; candidate?: unknown };
  if (typeof description === 'object' && description !== null) {
    const { type, sdp } = description as { type?: unknown; sdp?: unknown };
    if ((type === 'offer' || type === 'answer') && typeof sdp === 'string') return { description: { type, sdp } };
    return undefined;
  }
  if (typeof candidate === 'object' && candidate !== null) {
    const { candidate: line, sdpMid, sdpMLineIndex, usernameFragment } = candidate as Record<string, unknown>;
    if (typeof line !== 'string') return undefined;
    const init: RTCIceCandidateInit = { candidate: line };
    if (typeof sdpMid === 'string') init.sdpMid = sdpMid;
    if (typeof sdpMLineIndex === 'number') init.sdpMLineIndex = sdpMLineIndex;
    if (typeof usernameFragment === 'string') init.usernameFragment = usernameFragment;
    return { candidate: init };
  }
  return undefined;
}

export function resolvePeerClass(options: PeerOptions): RTCPeerConnectionClass {
  const found = options.RTCPeerConnection ?? (globalThis as { RTCPeerConnection?: RTCPeerConnectionClass }).RTCPeerConnection;
  if (!found) {
    throw new SignalingClientError('no-rtc', "No RTCPeerConnection here: in Node pass { RTCPeerConnection } from '@roamhq/wrtc'.");
  }
  return found;
}

export function rtcConfiguration(options: PeerOptions): RTCConfiguration {
  return { ...options.rtcConfiguration, iceServers: options.iceServers ?? options.rtcConfiguration?.iceServers ?? [] };
}

export interface NegotiationOptions extends PeerOptions {
  role: 'joiner' | 'sharer';
  /** Carries one outgoing signal to the other side. Errors fail the negotiation. */
  send: (signal: Signal) => void | Promise<void>;
}

/**
 * Drives one RTCPeerConnection from creation to an open data channel.
 * `opened` settles once: with the open link, or with the failure (after
 * which the connection is closed).
 */
export class PeerNegotiation {
  readonly connection: RTCPeerConnection;
  readonly opened: Promise<PeerLink>;
  readonly #role: 'joiner' | 'sharer';
  readonly #send: (signal: Signal) => void | Promise<void>;
  readonly #channelLabel: string;
  readonly #channelInit: RTCDataChannelInit;
  /** Incoming signals are applied one after another, in arrival order. */
  #incoming: Promise<void> = Promise.resolve();
  /** Candidates gathered before our own description went out wait here. */
  #outgoing: Signal[] | undefined = [];
  #resolve!: (link: PeerLink) => void;
  #reject!: (error: unknown) => void;
  #settled = false;

  constructor(options: NegotiationOptions) {
    const Peer = resolvePeerClass(options);
    this.#role = options.role;
    this.#send = options.send;
    this.#channelLabel = options.channelLabel ?? 'sigserve';
    this.#channelInit = options.channelInit ?? { ordered: true };
    this.opened = new Promise<PeerLink>((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
    // Nobody may be listening yet when it fails; the failure is still seen
    // through `opened` by whoever awaits it.
    this.opened.catch(() => undefined);
    const connection = new Peer(rtcConfiguration(options));
    this.connection = connection;
    connection.addEventListener('icecandidate', (event) => {
      const candidate = (event as RTCPeerConnectionIceEvent).candidate;
      // The end-of-candidates marker carries nothing the other side needs.
      if (!candidate || !candidate.candidate) return;
      const init: RTCIceCandidateInit = { candidate: candidate.candidate, sdpMid: candidate.sdpMid, sdpMLineIndex: candidate.sdpMLineIndex };
      if (candidate.usernameFragment) init.usernameFragment = candidate.usernameFragment;
      this.#emit({ candidate: init });
    });
    const watch = (): void => {
      if (connection.connectionState === 'failed' || connection.iceConnectionState === 'failed') {
        this.fail(new SignalingClientError('peer-failed', 'the WebRTC connection failed (no ICE candidate pair worked)'));
      }
    };
    connection.addEventListener('connectionstatechange', watch);
    connection.addEventListener('iceconnectionstatechange', watch);
    if (this.#role === 'sharer') {
      connection.addEventListener('datachannel', (event) => this.#watchChannel((event as RTCDataChannelEvent).channel));
    }
  }

  /** Joiner only: opens the data channel and sends the offer. */
  async start(): Promise<void> {
    if (this.#role !== 'joiner') throw new Error('only the joiner starts a negotiation');
    try {
      this.#watchChannel(this.connection.createDataChannel(this.#channelLabel, this.#channelInit));
      await this.connection.setLocalDescription(await this.connection.createOffer());
      this.#describe();
    } catch (error) {
      this.fail(error);
    }
  }

  /** Applies one signal from the other side. Never rejects: failures fail the negotiation. */
  receive(signal: Signal): Promise<void> {
    this.#incoming = this.#incoming.then(() => this.#apply(signal));
    return this.#incoming;
  }

  /** Ends the negotiation with `error` unless it already opened or failed. */
  fail(error: unknown): void {
    if (this.#settled) return;
    this.#settled = true;
    this.#outgoing = undefined;
    this.connection.close();
    this.#reject(error);
  }

  get settled(): boolean {
    return this.#settled;
  }

  async #apply(signal: Signal): Promise<void> {
    if (this.connection.signalingState === 'closed') return;
    try {
      if ('description' in signal) {
        const expected = this.#role === 'joiner' ? 'answer' : 'offer';
        // A second offer or answer would be a renegotiation, which this does not do.
        if (signal.description.type !== expected || this.connection.remoteDescription) return;
        await this.connection.setRemoteDescription(signal.description);
        if (this.#role === 'sharer') {
          await this.connection.setLocalDescription(await this.connection.createAnswer());
          this.#describe();
        }
      } else {
        // Candidates only follow a description: the transport keeps them in order.
        if (!this.connection.remoteDescription) return;
        await this.connection.addIceCandidate(signal.candidate).catch(() => {
          // One unusable candidate (an address family or mDNS name this side
          // cannot reach) is no reason to give up on the others.
        });
      }
    } catch (error) {
      this.fail(error);
    }
  }

  #describe(): void {
    const description = this.connection.localDescription;
    if (!description || this.#settled) return;
    const waiting = this.#outgoing ?? [];
    this.#outgoing = undefined;
    this.#transmit({ description: { type: description.type as 'offer' | 'answer', sdp: description.sdp } });
    for (const signal of waiting) this.#transmit(signal);
  }

  #emit(signal: Signal): void {
    // Once open (or failed) no further candidate is needed.
    if (this.#settled) return;
    if (this.#outgoing) this.#outgoing.push(signal);
    else this.#transmit(signal);
  }

  #transmit(signal: Signal): void {
    try {
      const sent = this.#send(signal);
      if (sent) sent.catch((error: unknown) => this.fail(error));
    } catch (error) {
      this.fail(error);
    }
  }

  #watchChannel(channel: RTCDataChannel): void {
    channel.binaryType = 'arraybuffer';
    const open = (): void => {
      if (this.#settled) return;
      this.#settled = true;
      this.#resolve({ connection: this.connection, channel });
    };
    if (channel.readyState === 'open') open();
    else channel.addEventListener('open', open, { once: true });
    channel.addEventListener(
      'close',
      () => {
        if (!this.#settled) this.fail(new SignalingClientError('peer-failed', 'the data channel closed before it opened'));
      },
      { once: true },
    );
  }
}
