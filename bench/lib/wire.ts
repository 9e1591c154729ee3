/**
 * Lean clients for every protocol the benchmark speaks, all on the `ws`
 * package, so the load generator spends the same on each server and stays
 * cheaper than the servers it drives:
 *
 * - `seed`: socket.io v4 (Engine.IO 4, websocket transport) speaking this
 *   project's seed events: share / launch / answer, launchResponse /
 *   answerResponse. Used for sigserve and for the plain socket.io relay.
 * - `peerjs`: peerjs-server's own WebSocket protocol (`/peerjs?key&id&token`,
 *   OPEN, OFFER / ANSWER / CANDIDATE with `dst`, HEARTBEAT every 5 s as the
 *   peerjs client sends it).
 * - `ws`: the minimal raw relay's JSON `{ to, ... }` messages.
 *
 * Browsers always offer permessage-deflate; every server here declines it
 * by default, so these clients do not offer it.
 * @module
 */
import { WebSocket, type RawData } from 'ws';

export type Protocol = 'seed' | 'peerjs' | 'ws';
export type Kind = 'offer' | 'answer' | 'candidate';

/**
 * Receives one relayed message. `hid` is the handshake id when the protocol
 * carries it to this side (the seed protocol does not tell a joiner).
 * `from` is what the receiver replies to.
 */
export type MessageHandler = (hid: string | undefined, from: string, data: string) => void;

export interface SignalConn {
  /** Resolves once the server accepted the connection at protocol level. */
  readonly ready: Promise<void>;
  /** Sharer: become reachable under `address` (seed: share it; others: the id it connected with). */
  register(address: string): Promise<void>;
  /** Joiner to sharer: offer or candidate of handshake `hid`. */
  toSharer(sharer: string, hid: string, kind: Kind, data: string): void;
  /** Sharer to joiner: answer or candidate of handshake `hid`; `joiner` is the `from` it received. */
  toJoiner(joiner: string, hid: string, kind: Kind, data: string): void;
  onMessage: MessageHandler;
  /** Error events from the server (seed: signalingError; peerjs: ERROR / ID-TAKEN). */
  onError: (what: string) => void;
  close(): void;
  /** Resolves when the socket is closed, for whatever reason. */
  readonly closed: Promise<void>;
}

export interface ConnectOptions {
  /** Base URL of the server, `http://127.0.0.1:PORT`. */
  url: string;
  /** Identity for protocols that connect with one (peerjs, ws). */
  id: string;
  /** Source address on 127.0.0.0/8, to spread many connections over many addresses. */
  localAddress?: string | undefined;
  /** Give up on the protocol-level handshake after this long. @default 20000 */
  timeoutMs?: number;
}

const noop = (): void => {};

abstract class BaseConn implements SignalConn {
  readonly ws: WebSocket;
  readonly ready: Promise<void>;
  readonly closed: Promise<void>;
  onMessage: MessageHandler = noop;
  onError: (what: string) => void = noop;
  protected resolveReady!: () => void;
  #rejectReady!: (error: Error) => void;
  #timer: NodeJS.Timeout;

  constructor(wsUrl: string, options: ConnectOptions) {
    this.ready = new Promise<void>((resolve, reject) => {
      this.resolveReady = resolve;
      this.#rejectReady = reject;
    });
    this.ready.catch(noop);
    this.#timer = setTimeout(() => this.fail(new Error(`no protocol handshake within ${options.timeoutMs ?? 20000} ms`)), options.timeoutMs ?? 20000);
    this.ws = new WebSocket(wsUrl, { perMessageDeflate: false, localAddress: options.localAddress });
    this.closed = new Promise<void>((resolve) => this.ws.once('close', () => resolve()));
    this.ws.on('error', (error) => this.fail(error));
    this.ws.on('close', (code) => this.fail(new Error(`closed (${code}) before the protocol handshake`)));
    this.ws.on('message', (data, isBinary) => {
      if (isBinary) return;
      try {
        this.receive(data);
      } catch {
        this.onError('undecodable frame');
      }
    });
  }

  protected fail(error: Error): void {
    clearTimeout(this.#timer);
    this.#rejectReady(error);
    if (this.ws.readyState === WebSocket.CONNECTING || this.ws.readyState === WebSocket.OPEN) this.ws.terminate();
  }

  protected markReady(): void {
    clearTimeout(this.#timer);
    this.resolveReady();
  }

  protected send(text: string): void {
    if (this.ws.readyState === WebSocket.OPEN) this.ws.send(text);
  }

  close(): void {
    clearTimeout(this.#timer);
    if (this.ws.readyState === WebSocket.OPEN) this.ws.close();
    else if (this.ws.readyState === WebSocket.CONNECTING) this.ws.terminate();
  }

  abstract receive(data: RawData): void;
  abstract register(address: string): Promise<void>;
  abstract toSharer(sharer: string, hid: string, kind: Kind, data: string): void;
  abstract toJoiner(joiner: string, hid: string, kind: Kind, data: string): void;
}

/**
 * socket.io v4 over a bare WebSocket: Engine.IO packets are one text frame
 * each ('0' open, '2' ping, '3' pong, '4' message), socket.io packets ride in
 * '4' ('40' connect, '42' event, '43' ack, '44' connect error).
 */
class SeedConn extends BaseConn {
  #name = '';
  #nextAck = 0;
  readonly #acks = new Map<number, (args: unknown[]) => void>();

  constructor(options: ConnectOptions) {
    const base = options.url.replace(/^http/, 'ws').replace(/\/$/, '');
    super(`${base}/socket.io/?EIO=4&transport=websocket`, options);
  }

  receive(data: RawData): void {
    const text = data.toString();
    switch (text.charCodeAt(0)) {
      case 48: // '0' Engine.IO open: connect to the main namespace
        this.send('40');
        return;
      case 50: // '2' ping
        this.send('3');
        return;
      case 52: // '4' message: a socket.io packet
        this.#packet(text);
        return;
    }
  }

  #packet(text: string): void {
    const type = text.charCodeAt(1) - 48;
    if (type === 0) {
      this.markReady();
      return;
    }
    if (type === 4) {
      this.fail(new Error('socket.io connect error'));
      return;
    }
    if (type !== 2 && type !== 3) return;
    let i = 2;
    while (i < text.length && text.charCodeAt(i) >= 48 && text.charCodeAt(i) <= 57) i++;
    const args = JSON.parse(text.slice(i)) as unknown[];
    if (type === 3) {
      const id = Number(text.slice(2, i));
      const ack = this.#acks.get(id);
      this.#acks.delete(id);
      ack?.(args);
      return;
    }
    switch (args[0]) {
      case 'launchResponse':
        this.onMessage(args[1] as string, args[1] as string, args[2] as string);
        return;
      case 'answerResponse':
        this.onMessage(undefined, '', args[1] as string);
        return;
      case 'signalingError':
        this.onError(`signalingError ${(args[1] as { code?: string } | undefined)?.code ?? '?'}`);
        return;
    }
  }

  #emit(args: unknown[]): void {
    this.send(`42${JSON.stringify(args)}`);
  }

  #emitWithAck(args: unknown[], timeoutMs = 20000): Promise<unknown[]> {
    const id = this.#nextAck++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#acks.delete(id);
        reject(new Error(`no ack for ${String(args[0])} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.#acks.set(id, (reply) => {
        clearTimeout(timer);
        resolve(reply);
      });
      this.send(`42${id}${JSON.stringify(args)}`);
    });
  }

  async register(address: string): Promise<void> {
    this.#name = address;
    const [result] = (await this.#emitWithAck(['share', address])) as [{ ok: boolean; error?: { code: string } }];
    if (!result?.ok) throw new Error(`share refused: ${result?.error?.code ?? 'no reply'}`);
  }

  toSharer(sharer: string, hid: string, _kind: Kind, data: string): void {
    this.#emit(['launch', sharer, hid, data]);
  }

  toJoiner(_joiner: string, hid: string, _kind: Kind, data: string): void {
    this.#emit(['answer', this.#name, hid, data]);
  }
}

interface PeerjsMessage {
  type: string;
  src?: string;
  payload?: { connectionId?: string; sdp?: { sdp?: string }; candidate?: { candidate?: string }; msg?: string };
}

const PEERJS_TYPE: Record<Kind, string> = { offer: 'OFFER', answer: 'ANSWER', candidate: 'CANDIDATE' };

/** peerjs-server's protocol, with the payload shapes the peerjs browser client sends for a data connection. */
class PeerjsConn extends BaseConn {
  static readonly all = new Set<PeerjsConn>();
  static #heartbeat: NodeJS.Timeout | undefined;

  constructor(options: ConnectOptions) {
    const base = options.url.replace(/^http/, 'ws').replace(/\/$/, '');
    super(`${base}/peerjs?key=peerjs&id=${encodeURIComponent(options.id)}&token=${Math.random().toString(36).slice(2)}&version=1.5.4`, options);
    PeerjsConn.all.add(this);
    void this.closed.then(() => PeerjsConn.all.delete(this));
    // The peerjs client sends a HEARTBEAT every 5 s; one timer serves every connection of this process.
    PeerjsConn.#heartbeat ??= setInterval(() => {
      for (const conn of PeerjsConn.all) conn.send('{"type":"HEARTBEAT"}');
    }, 5000).unref();
  }

  receive(data: RawData): void {
    const message = JSON.parse(data.toString()) as PeerjsMessage;
    switch (message.type) {
      case 'OPEN':
        this.markReady();
        return;
      case 'OFFER':
      case 'ANSWER':
        this.onMessage(message.payload?.connectionId, message.src ?? '', message.payload?.sdp?.sdp ?? '');
        return;
      case 'CANDIDATE':
        this.onMessage(message.payload?.connectionId, message.src ?? '', message.payload?.candidate?.candidate ?? '');
        return;
      case 'ERROR':
      case 'ID-TAKEN':
        this.onError(`${message.type} ${message.payload?.msg ?? ''}`);
        this.fail(new Error(`peerjs ${message.type}`));
        return;
      default:
        // LEAVE / EXPIRE: the other side went away; the generator notices by the missing reply.
        this.onError(message.type);
    }
  }

  async register(): Promise<void> {}

  #transmit(dst: string, hid: string, kind: Kind, data: string): void {
    const payload =
      kind === 'candidate'
        ? { candidate: { candidate: data, sdpMLineIndex: 0, sdpMid: '0' }, type: 'data', connectionId: hid }
        : kind === 'offer'
          ? { sdp: { type: 'offer', sdp: data }, type: 'data', connectionId: hid, label: hid, reliable: true, serialization: 'binary' }
          : { sdp: { type: 'answer', sdp: data }, type: 'data', connectionId: hid };
    this.send(JSON.stringify({ type: PEERJS_TYPE[kind], payload, dst }));
  }

  toSharer(sharer: string, hid: string, kind: Kind, data: string): void {
    this.#transmit(sharer, hid, kind, data);
  }

  toJoiner(joiner: string, hid: string, kind: Kind, data: string): void {
    this.#transmit(joiner, hid, kind, data);
  }
}

/** The raw relay's JSON: `{ to, hid, data }` in, the same plus `from` out. */
class WsRelayConn extends BaseConn {
  constructor(options: ConnectOptions) {
    const base = options.url.replace(/^http/, 'ws').replace(/\/$/, '');
    super(`${base}/?id=${encodeURIComponent(options.id)}`, options);
    this.ws.once('open', () => this.markReady());
  }

  receive(data: RawData): void {
    const message = JSON.parse(data.toString()) as { from?: string; hid?: string; data?: string };
    this.onMessage(message.hid, message.from ?? '', message.data ?? '');
  }

  async register(): Promise<void> {}

  toSharer(sharer: string, hid: string, kind: Kind, data: string): void {
    this.send(JSON.stringify({ to: sharer, hid, kind, data }));
  }

  toJoiner(joiner: string, hid: string, kind: Kind, data: string): void {
    this.send(JSON.stringify({ to: joiner, hid, kind, data }));
  }
}

/** Opens one connection speaking `protocol`; await `ready` before using it. */
export function connect(protocol: Protocol, options: ConnectOptions): SignalConn {
  switch (protocol) {
    case 'seed':
      return new SeedConn(options);
    case 'peerjs':
      return new PeerjsConn(options);
    case 'ws':
      return new WsRelayConn(options);
  }
}
