/**
 * One socket.io client served straight on a `ws` WebSocket: the engine.io
 * v4 and socket.io v5 protocols, for a client that opens a websocket
 * directly (socket.io-client with `transports: ['websocket']`, or trying
 * websocket first, as the client library does).
 *
 * socket.io stacks four EventEmitters per connection (an engine.io Socket,
 * its websocket Transport, a socket.io Client and a Socket), each with its
 * own listeners, buffers and timers, and passes every packet through all of
 * them. A DirectSocket is one object: text packets are decoded by socket.io's
 * own parser (one stateless instance for every connection), events go
 * straight to the endpoint, and one wheel (src/server/heartbeat-wheel.ts)
 * sends the heartbeats of every connection.
 *
 * What reaches the endpoint is what socket.io's Socket would hand it: the
 * same decoded arguments, the same ack function, the same close reasons.
 * @module
 */
// Before anything loads ws: its receiver keeps the unmask it finds then.
import './ws-unmask.js';
import type { Writable } from 'node:stream';
import { WebSocket, type RawData } from 'ws';
import { PacketType, type Decoder, type Packet } from 'socket.io-parser';
import type { Bucket } from './rate-limiter.js';
import type { AddressState } from './admission.js';
import { decodeTextPacket, newPacketDecoder, packetEncoder, relayedEventHead } from './relay-parser.js';
import { RawJson } from '../core/raw-json.js';
import { feedReceiver } from './receiver-feed.js';

/** The server side of a DirectSocket. */
export interface DirectSocketHost {
  /** Heartbeat visits a ping may go unanswered before the connection is dropped (at least 1). */
  readonly patience: number;
  /** The client asked to join the main namespace, with this auth payload: answer with `accept` or `refuse`. */
  connecting(socket: DirectSocket, auth: unknown): void;
  /** An event: its name, its arguments, then an ack function when the client asked for one. */
  received(socket: DirectSocket, args: unknown[]): void;
  /** The connection is over (closed by either side); called once. */
  closed(socket: DirectSocket, reason: string): void;
}

// Where the connection is: the socket.io connect comes after the engine.io open.
const OPEN = 0;
const CONNECTING = 1;
const CONNECTED = 2;
const CLOSED = 3;
const STATE = 3;
// In a socket's status, beside its state: written to in this tick.
const WRITTEN = 4;
// In a socket's status, above the state and WRITTEN: heartbeat visits since an unanswered ping.
const PING_AGE_SHIFT = 3;

// engine.io packet types, as the first character of a text frame.
const EIO_CLOSE = 49; // '1'
const EIO_PONG = 51; // '3'
const EIO_MESSAGE = 52; // '4'
const EIO_NOOP = 54; // '6'
// socket.io binary packet types, as the first character after the engine.io one.
const SIO_BINARY_EVENT = 53; // '5'
const SIO_BINARY_ACK = 54; // '6'

/**
 * ws's WebSocket with a slot for its DirectSocket, declared so that it
 * lives in the object itself (a property added later would cost a
 * property array per connection). The WebSocketServer makes these.
 */
export class CarrierWebSocket extends WebSocket {
  owner: DirectSocket | undefined = undefined;
}

/** ws's Receiver, as far as its list of incoming chunks goes. */
interface ChunkList {
  _buffers?: unknown;
}

/**
 * ws's Receiver queues incoming chunks in an array it pushes to and shifts
 * from, so after the first message that array keeps a 16-slot backing
 * store, ~150 bytes, for the connection's life. After the messages an idle
 * connection sends (the socket.io connect, pongs), if that left it empty,
 * an empty array (no backing store) takes its place; events, the hot path,
 * keep ws's reuse of it. ws reads the field afresh on every chunk; if a ws
 * version names it otherwise, nothing is done (test/direct-memory.test.ts
 * notices).
 */
function releaseChunks(ws: WebSocket): void {
  const receiver = (ws as unknown as { _receiver?: ChunkList | null })._receiver;
  if (receiver && Array.isArray(receiver._buffers) && receiver._buffers.length === 0) receiver._buffers = [];
}

// One set of listeners for every websocket (`this` is the websocket), so a
// connection costs no closures.
function onMessage(this: WebSocket, data: RawData, isBinary: boolean): void {
  (this as CarrierWebSocket).owner?.frame(data as Buffer, isBinary);
}
function onClose(this: WebSocket): void {
  (this as CarrierWebSocket).owner?.close('transport close');
}
function onError(this: WebSocket): void {
  // Too large a frame, bad UTF-8, a reset: ws closes the connection itself.
  (this as CarrierWebSocket).owner?.close('transport error');
}

// Bursts: frames written to one connection within one tick (a sharer's
// answer and its trickled candidates arrive together and leave together)
// go out in one writev. The first frame of a tick is written at once and
// marks its socket WRITTEN; a second one corks the TCP socket until the
// tick ends, when the marks are cleared.
let tickEnding = false;
const written: DirectSocket[] = [];
const corked: Writable[] = [];

// Set while a connection's binary decoder runs: decoding is synchronous.
let decodedPacket: Packet | undefined;
function onDecoded(packet: Packet): void {
  decodedPacket = packet;
}

/** `2[` and the event name's JSON, then a comma: the start of an event packet, per event name (the server emits a few). */
const eventHeads = new Map<string, string>();
function eventHead(event: string): string {
  let head = eventHeads.get(event);
  if (head === undefined) eventHeads.set(event, (head = `2[${JSON.stringify(event)},`));
  return head;
}

const NO_QUERY: Readonly<Record<string, string>> = Object.freeze({});

/**
 * A connection; its host is the same for every socket of one server, so it
 * lives in the prototype of a subclass per server (`directSocketsOf`)
 * rather than in every socket.
 */
export abstract class DirectSocket implements Bucket {
  /** The id its client knows it by (socket.io's `sid`); empty until connected. */
  id = '';
  /** The id the core knows it by (see SocketEndpoint.opened); empty until connected. */
  coreId = '';
  /** Its slot in the heartbeat wheel. */
  slot = -1;
  // Its rate-limit bucket (src/server/rate-limiter.ts), kept in the socket
  // itself: one object less per connection.
  tokens = 0;
  refilledAt = 0;
  refused = 0;
  /** Its client address, where `admitted` counted it (src/server/admission.ts). */
  readonly address: AddressState;
  /** Its state, WRITTEN, and its ping age: one small integer rather than three fields. */
  #status = OPEN;
  /**
   * Until it connects, the `?token=` of its URL (for clients without
   * handshake auth); once a client sends binary packets, which span several
   * frames, the decoder made for them. A decoder made before the connect
   * means the connection is closed at that packet's end (`onPacket`), so
   * the two never need to be held at once.
   */
  #aside: string | Decoder | undefined;
  readonly #ws: CarrierWebSocket;

  constructor(ws: CarrierWebSocket, address: AddressState, token: string | undefined) {
    this.#ws = ws;
    this.address = address;
    this.#aside = token;
    ws.owner = this;
    ws.on('message', onMessage);
    ws.on('close', onClose);
    ws.on('error', onError);
    feedReceiver(ws, onMessage);
  }

  protected abstract get host(): DirectSocketHost;

  // Accessors and methods of TypeScript's `private`, not `#`: a class with
  // `#` methods or accessors, even static ones, gives every instance a
  // brand field.

  private get state(): number {
    return this.#status & STATE;
  }

  private set state(state: number) {
    this.#status = (this.#status & ~STATE) | state;
  }

  /** Heartbeat visits since a ping went out with no pong yet; 0 when none is awaited. */
  private get pingAge(): number {
    return this.#status >>> PING_AGE_SHIFT;
  }

  private set pingAge(age: number) {
    this.#status = (this.#status & (STATE | WRITTEN)) | (age << PING_AGE_SHIFT);
  }

  private get decoder(): Decoder | undefined {
    return typeof this.#aside === 'object' ? this.#aside : undefined;
  }

  /** Ends a tick in which sockets were written to. */
  private static endTick(): void {
    tickEnding = false;
    for (const socket of written) socket.#status &= ~WRITTEN;
    written.length = 0;
    for (const tcp of corked) tcp.uncork();
    corked.length = 0;
  }

  /** socket.io's `socket.data`: the endpoint's per-socket data is the socket's own fields. */
  get data(): this {
    return this;
  }

  /** Its own rate-limit bucket. */
  get bucket(): this {
    return this;
  }

  /** socket.io's `handshake.query`, as far as tokens go. */
  get query(): Readonly<Record<string, string>> {
    return typeof this.#aside === 'string' ? { token: this.#aside } : NO_QUERY;
  }

  get connected(): boolean {
    return this.state === CONNECTED;
  }

  /** Between the socket.io connect and `accept` or `refuse`. */
  get connecting(): boolean {
    return this.state === CONNECTING;
  }

  /** Sends the engine.io open packet. */
  open(packet: string): void {
    this.#ws.send(packet);
  }

  /** Completes the socket.io connect `connecting` announced, under `id`. */
  accept(id: string): void {
    if (this.state !== CONNECTING) return;
    this.id = id;
    this.state = CONNECTED;
    // Read once, in `connecting`.
    this.#aside = undefined;
    this.#ws.send(`40{"sid":"${id}"}`);
  }

  /** Refuses the socket.io connect (socket.io's middleware error); the client may try again. */
  refuse(message: string): void {
    if (this.state !== CONNECTING) return;
    this.state = OPEN;
    this.sendPacket({ type: PacketType.CONNECT_ERROR, nsp: '/', data: { message } });
  }

  emit(event: string, ...args: unknown[]): boolean {
    if (this.state !== CONNECTED) return false;
    // A relayed message goes out as the text it came in, without a packet
    // object: launchResponse(uid, message) and answerResponse(message)
    // without building the argument list, anything else through it.
    const last = args[args.length - 1];
    if (last instanceof RawJson && (args.length === 1 || (args.length === 2 && typeof args[0] === 'string'))) {
      const head = eventHead(event);
      this.sendText(args.length === 1 ? head : `${head}${JSON.stringify(args[0])},`, last.text, ']');
      return true;
    }
    args.unshift(event);
    const head = relayedEventHead('2', args);
    if (head !== undefined) this.sendText(head, (args[args.length - 1] as RawJson).text, ']');
    else this.sendPacket({ type: PacketType.EVENT, nsp: '/', data: args });
    return true;
  }

  /** socket.io's `disconnect(true)`: tells the client, then closes the connection. */
  disconnect(): this {
    if (this.state === CONNECTED) this.#ws.send('41');
    this.close('server namespace disconnect');
    return this;
  }

  /** Bytes written to the websocket that the client has not taken yet. */
  bufferedBytes(): number {
    return this.#ws.bufferedAmount;
  }

  /** Resolves when the websocket has closed. */
  transportClosed(): Promise<void> {
    if (this.#ws.readyState === this.#ws.CLOSED) return Promise.resolve();
    return new Promise((resolve) => this.#ws.once('close', () => resolve()));
  }

  /** Drops the connection at once, with whatever is queued for it (see src/server/slow-consumer.ts). */
  cutOff(): void {
    this.#ws.terminate();
  }

  /**
   * The heartbeat wheel's visit, once per ping interval: the pong to the
   * last ping must have come by the ping timeout (counted in visits), and
   * the socket.io connect by the first visit.
   */
  beat(): void {
    if (this.pingAge > 0) {
      if (++this.pingAge > this.host.patience) this.close('ping timeout');
      return;
    }
    if (this.state !== CONNECTED) return this.close('connect timeout');
    this.pingAge = 1;
    this.#ws.send('2');
  }

  /**
   * Ends the connection and tells the host, once: with a close frame, as
   * engine.io does, except for a client gone silent, whose connection is
   * dropped at once (ws would otherwise hold it up to 30 s for a close
   * frame that will not come).
   */
  close(reason: string): void {
    if (this.state === CLOSED) return;
    this.state = CLOSED;
    if (reason === 'ping timeout' || reason === 'connect timeout') this.#ws.terminate();
    else this.#ws.close();
    this.host.closed(this, reason);
  }

  /** One websocket frame from the client. */
  frame(data: Buffer, isBinary: boolean): void {
    if (this.state === CLOSED) return;
    if (isBinary) {
      // An attachment of the binary packet being received, and nothing else.
      if (this.decoder) this.decodePart(data);
      else this.close('parse error');
      return;
    }
    const text = data.toString();
    switch (text.charCodeAt(0)) {
      case EIO_MESSAGE: {
        const type = text.charCodeAt(1);
        if (this.decoder || type === SIO_BINARY_EVENT || type === SIO_BINARY_ACK) return this.decodePart(text.slice(1));
        let packet: Packet;
        try {
          packet = decodeTextPacket(text.slice(1));
        } catch {
          return this.close('parse error');
        }
        return this.onPacket(packet);
      }
      case EIO_PONG:
        this.pingAge = 0;
        return releaseChunks(this.#ws);
      case EIO_NOOP:
        return;
      case EIO_CLOSE:
        return this.close('transport close');
      default:
        // Anything else, pings included (in engine.io v4 only the server pings).
        return this.close('parse error');
    }
  }

  /** A binary packet's frames go through a decoder of this connection's own. */
  private decodePart(part: string | Buffer): void {
    let decoder = this.decoder;
    if (!decoder) {
      this.#aside = decoder = newPacketDecoder();
      decoder.on('decoded', onDecoded);
    }
    decodedPacket = undefined;
    try {
      decoder.add(part);
    } catch {
      return this.close('parse error');
    }
    const packet = decodedPacket;
    decodedPacket = undefined;
    if (packet) this.onPacket(packet);
  }

  /** As socket.io's Client and Socket handle a decoded packet. */
  private onPacket(packet: Packet): void {
    if (packet.type === PacketType.CONNECT) {
      // Only the main namespace exists: socket.io answers others so and keeps the connection.
      if (packet.nsp !== '/') return this.sendPacket({ type: PacketType.CONNECT_ERROR, nsp: packet.nsp, data: { message: 'Invalid namespace' } });
      if (this.state !== OPEN) return this.close('invalid state');
      this.state = CONNECTING;
      releaseChunks(this.#ws);
      return this.host.connecting(this, packet.data);
    }
    // Anything else is for a connected main namespace, or the connection is closed.
    if (this.state !== CONNECTED || packet.nsp !== '/') return this.close('invalid state');
    switch (packet.type) {
      case PacketType.EVENT: {
        // As socket.io: a packet without data is an event without a name, which nothing listens to.
        const args = (packet.data as unknown[] | undefined) ?? [];
        if (packet.id !== undefined) args.push(this.ackFor(packet.id));
        return this.host.received(this, args);
      }
      case PacketType.DISCONNECT:
        return this.close('client namespace disconnect');
      case PacketType.ACK:
        // The server never asks clients for acks: nothing waits for one.
        return;
      default:
        return this.close('invalid state');
    }
  }

  private ackFor(id: number): (result: unknown) => void {
    let sent = false;
    return (result) => {
      if (sent) return;
      sent = true;
      this.sendPacket({ type: PacketType.ACK, nsp: '/', id, data: [result] });
    };
  }

  private sendPacket(packet: Packet): void {
    if (this.state === CLOSED) return;
    for (const part of packetEncoder.encode(packet) as (string | Buffer)[]) {
      // Binary attachments travel as binary frames, without an engine.io type.
      if (typeof part === 'string') this.sendText(part);
      else this.#ws.send(part);
    }
  }

  /**
   * An engine.io message (`4`, then `a`, `b` and `c`: a relayed message's
   * text is passed where it lies, never joined by hand) as one websocket
   * text frame in one write. A server's frames are not masked, so the frame
   * is simply the header followed by the UTF-8 text. ws would copy the text
   * into a buffer and write its header and that buffer as two (a corked
   * writev). Frames written here and by ws never interleave: both write
   * whole frames synchronously (ws queues only while compressing, which is
   * off). Without ws's TCP socket, ws sends it.
   */
  private sendText(a: string, b = '', c = ''): void {
    const tcp = this.#ws.readyState === this.#ws.OPEN ? (this.#ws as unknown as { _socket?: Writable })._socket : undefined;
    if (!tcp || typeof tcp.write !== 'function') return void this.#ws.send(`4${a}${b}${c}`);
    const la = Buffer.byteLength(a);
    const lb = b === '' ? 0 : Buffer.byteLength(b);
    const lc = c === '' ? 0 : Buffer.byteLength(c);
    const length = 1 + la + lb + lc;
    if ((this.#status & WRITTEN) === 0) {
      this.#status |= WRITTEN;
      written.push(this);
      if (!tickEnding) {
        tickEnding = true;
        process.nextTick(DirectSocket.endTick);
      }
    } else if (tcp.writableCorked === 0) {
      tcp.cork();
      corked.push(tcp);
    }
    // Text that is all ASCII (as SDP and JSON nearly always are: every
    // UTF-8 length equals its UTF-16 one) is its own Latin-1 encoding, and
    // so is the header written as characters: the whole frame goes as one
    // Latin-1 string, which Node encodes on the stack and writes at once.
    // A Buffer would cost an ArrayBuffer (a slice of Node's pool, a new one
    // every few frames) that each young-generation GC must sweep; measured
    // at 50 pairs that sweep was most of the GC pause.
    if (length === 1 + a.length + b.length + c.length && length < 65_536) {
      tcp.write(`${length < 126 ? frameHeads[length]! : String.fromCharCode(0x81, 126, length >>> 8, length & 0xff)}4${a}${b}${c}`, 'latin1');
      return;
    }
    const head = length < 126 ? 2 : length < 65_536 ? 4 : 10;
    const frame = Buffer.allocUnsafe(head + length);
    frame[0] = 0x81; // FIN, text
    if (head === 2) {
      frame[1] = length;
    } else if (head === 4) {
      frame[1] = 126;
      frame.writeUInt16BE(length, 2);
    } else {
      frame[1] = 127;
      frame.writeUInt32BE(0, 2);
      frame.writeUInt32BE(length, 6);
    }
    frame[head] = 0x34; // '4': an engine.io message
    let at = head + 1;
    at += frame.write(a, at, la, 'utf8');
    if (lb > 0) at += frame.write(b, at, lb, 'utf8');
    if (lc > 0) frame.write(c, at, lc, 'utf8');
    tcp.write(frame);
  }
}

/** The header of an unmasked, final text frame of each length below 126, as Latin-1 characters. */
const frameHeads = Array.from({ length: 126 }, (_, length) => String.fromCharCode(0x81, length));

/** The DirectSocket class of the sockets `host` serves. */
export function directSocketsOf(host: DirectSocketHost): new (ws: CarrierWebSocket, address: AddressState, token: string | undefined) => DirectSocket {
  return class extends DirectSocket {
    protected get host(): DirectSocketHost {
      return host;
    }
  };
}
