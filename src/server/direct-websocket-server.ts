/**
 * The direct websocket engine: serves the websockets socket.io-client v4
 * opens directly (`/socket.io/?EIO=4&transport=websocket`, no `sid`) as
 * DirectSockets (src/server/direct-socket.ts), on `ws` without engine.io.
 * Every other request (long-polling, the upgrade of a polling session,
 * socket.io 1.x/2.x clients, anything malformed) goes to socket.io as
 * before, so socket.io stays the reference for what the wire looks like.
 *
 * A direct connection passes the same admission (origin, connection caps
 * and rates) before the websocket is accepted, and its events go through
 * the same endpoint, with the same validation, limits and metrics.
 * @module
 */
// Before anything loads ws: its receiver keeps the unmask it finds then.
import './ws-unmask.js';
import './quiet-ends.js';
import { randomFillSync } from 'node:crypto';
import type { IncomingMessage, Server as HttpServer } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer } from 'ws';
import type { Admission } from './admission.js';
import { CarrierWebSocket, directSocketsOf, type DirectSocket, type DirectSocketHost } from './direct-socket.js';
import { HeartbeatWheel } from './heartbeat-wheel.js';
import type { SharePolicy } from '../core/share-policy.js';
import type { SocketEndpoint } from './socket-endpoint.js';

export interface DirectWebSocketOptions {
  /** Largest frame accepted; a larger one closes the connection (engine.io's maxHttpBufferSize). */
  maxPayload: number;
  /** engine.io's heartbeat settings, announced to clients in the open packet. */
  pingInterval: number;
  pingTimeout: number;
  admission: Admission;
  endpoint: SocketEndpoint;
  /**
   * socket.io's path.
   * @default '/socket.io/'
   */
  path?: string;
}

type UpgradeListener = (req: IncomingMessage, socket: Duplex, head: Buffer) => void;

// Ids as engine.io makes them (15 random bytes, 20 characters), drawn from a
// pool refilled once per 256 ids rather than one system call each.
const ID_BYTES = 15;
const idPool = Buffer.allocUnsafe(ID_BYTES * 256);
let idOffset = idPool.length;
function newId(index?: number): string {
  if (idOffset === idPool.length) {
    randomFillSync(idPool);
    idOffset = 0;
  }
  idOffset += ID_BYTES;
  // The last 3 bytes are the last 4 characters (see SocketTable).
  if (index !== undefined) idPool.writeUIntBE(index, idOffset - 3, 3);
  // One flat string, not a concatenation: it is kept for the connection's life.
  return idPool.toString('base64url', idOffset - ID_BYTES, idOffset);
}

/**
 * Connected sockets, found by id: the last 4 of an id's 20 characters
 * carry its index in an array (24 bits, base64url), the first 16 are random
 * (96 bits). A lookup is an index and a comparison, and a socket costs one
 * array element rather than a Map entry (~46 bytes per entry at 10,000:
 * a Map's table holds a bucket and three words per entry, at up to twice
 * the entries). Free elements hold the index of the next free one.
 */
class SocketTable {
  static readonly MAX = 1 << 24;
  readonly #slots: (DirectSocket | number)[] = [];
  /** First free element; -1 when none. */
  #free = -1;

  /** A new id for `socket`, holding it from now; undefined when the table is full. */
  add(socket: DirectSocket): string | undefined {
    let index = this.#free;
    if (index >= 0) {
      this.#free = this.#slots[index] as number;
      this.#slots[index] = socket;
    } else {
      index = this.#slots.length;
      if (index >= SocketTable.MAX) return undefined;
      this.#slots.push(socket);
    }
    return newId(index);
  }

  get(id: string): DirectSocket | undefined {
    const entry = this.#slots[indexOf(id)];
    return typeof entry === 'object' && entry.id === id ? entry : undefined;
  }

  remove(socket: DirectSocket): void {
    const index = indexOf(socket.id);
    if (this.#slots[index] !== socket) return;
    this.#slots[index] = this.#free;
    this.#free = index;
  }
}

const BASE64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
/** Character code -> its base64url value; for any other character one that puts the index past the table. */
const SEXTETS = new Int32Array(128).fill(SocketTable.MAX);
for (let i = 0; i < 64; i++) SEXTETS[BASE64URL.charCodeAt(i)] = i;
const sextet = (id: string, at: number): number => SEXTETS[id.charCodeAt(at) & 127]!;
/** The table index an id carries; at least SocketTable.MAX for a string that is no such id. */
const indexOf = (id: string): number =>
  id.length === 20 ? sextet(id, 16) * 262_144 + sextet(id, 17) * 4096 + sextet(id, 18) * 64 + sextet(id, 19) : SocketTable.MAX;

function refuseUpgrade(socket: Duplex, message: string): void {
  // As engine.io refuses an upgrade: 400, the reason as the body.
  if (socket.writable) {
    socket.write(
      `HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-type: text/html\r\nContent-Length: ${Buffer.byteLength(message)}\r\n\r\n${message}`,
    );
  }
  socket.destroy();
}

/**
 * Node keeps a socket's peer address, once read (admission reads it), in
 * an object on the socket for the connection's life: ~50 bytes per
 * connection that nothing reads again. Without it Node asks the OS afresh
 * should anything read it while the connection is open. Only an object
 * Node put there is cleared (test/direct-memory.test.ts notices if Node
 * stops keeping it so).
 */
function forgetPeerAddress(tcp: Duplex): void {
  const cached = tcp as unknown as { _peername?: unknown };
  if (Object.hasOwn(cached, '_peername') && typeof cached._peername === 'object' && cached._peername !== null) cached._peername = undefined;
}

function destroyOnError(this: Duplex): void {
  this.destroy();
}

export class DirectWebSocketServer implements DirectSocketHost {
  /** Connected sockets, by the id their clients know. */
  readonly #sockets = new SocketTable();
  /** Every open connection, connected or not yet. */
  readonly #wheel: HeartbeatWheel<DirectSocket>;
  readonly #wss: WebSocketServer;
  readonly #openTail: string;
  readonly #path: string;
  readonly #admission: Admission;
  readonly #endpoint: SocketEndpoint;
  readonly patience: number;
  readonly #Socket = directSocketsOf(this);
  #closing = false;

  constructor(options: DirectWebSocketOptions) {
    this.#admission = options.admission;
    this.#endpoint = options.endpoint;
    this.#path = options.path ?? '/socket.io/';
    // socket.io's defaults: no compression (it costs more CPU and memory per
    // connection than signaling's small messages save).
    this.#wss = new WebSocketServer({
      noServer: true,
      maxPayload: options.maxPayload,
      perMessageDeflate: false,
      clientTracking: false,
      WebSocket: CarrierWebSocket,
    });
    this.#wheel = new HeartbeatWheel(options.pingInterval);
    // The pong is checked at the visits after the ping: one ping interval apart.
    this.patience = Math.max(1, Math.ceil(options.pingTimeout / options.pingInterval));
    this.#openTail = `","upgrades":[],"pingInterval":${options.pingInterval},"pingTimeout":${options.pingTimeout},"maxPayload":${options.maxPayload}}`;
    options.endpoint.serveDirect((id) => this.#sockets.get(id));
  }

  /**
   * Takes over `httpServer`'s upgrades: the ones this engine serves, and
   * hands the rest to the listeners already there (engine.io's).
   */
  attach(httpServer: HttpServer): void {
    const others = httpServer.listeners('upgrade') as UpgradeListener[];
    httpServer.removeAllListeners('upgrade');
    httpServer.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      const query = this.#claim(req);
      if (query) this.#upgrade(req, socket, head, query);
      else for (const listener of others) listener.call(httpServer, req, socket, head);
    });
  }

  /** Open connections, connected or not yet. */
  get size(): number {
    return this.#wheel.size;
  }

  /** Closes every connection (cut after `graceMs` if the client does not answer the close) and accepts no more. */
  async close(graceMs: number): Promise<void> {
    this.#closing = true;
    this.#wheel.stop();
    const open = this.#wheel.members();
    const gone = open.map((socket) => socket.transportClosed());
    for (const socket of open) socket.close('server shutting down');
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([Promise.all(gone), new Promise<void>((resolve) => (timer = setTimeout(resolve, graceMs)))]);
    clearTimeout(timer);
    for (const socket of open) socket.cutOff();
  }

  /** The query of a request this engine serves; undefined for one socket.io serves. */
  #claim(req: IncomingMessage): URLSearchParams | undefined {
    const url = req.url;
    if (url === undefined || !url.startsWith(this.#path) || url.charCodeAt(this.#path.length) !== 63 /* '?' */) return undefined;
    const query = new URLSearchParams(url.slice(this.#path.length + 1));
    if (query.get('EIO') !== '4' || query.get('transport') !== 'websocket' || query.has('sid')) return undefined;
    return query;
  }

  #upgrade(req: IncomingMessage, socket: Duplex, head: Buffer, query: URLSearchParams): void {
    if (this.#closing) return void socket.destroy();
    // Until ws takes the socket, a reset must not go unhandled.
    socket.on('error', destroyOnError);
    this.#admission.allowRequest(req, (reason, allowed) => {
      if (!allowed) return refuseUpgrade(socket, reason ?? 'Forbidden');
      if (this.#closing) return void socket.destroy();
      // The 101 response and the open packet leave in one write: a syscall,
      // and a wakeup of the client, fewer per connection (RESULTS phase 14).
      socket.cork();
      this.#wss.handleUpgrade(req, socket, head, (ws) => {
        socket.removeListener('error', destroyOnError);
        this.#opened(ws as CarrierWebSocket, req, query.get('token') ?? undefined);
        forgetPeerAddress(socket);
      });
      socket.uncork();
    });
  }

  #opened(ws: CarrierWebSocket, req: IncomingMessage, token: string | undefined): void {
    const socket = new this.#Socket(ws, this.#admission.admitted(req), token);
    this.#wheel.add(socket);
    socket.open(`0{"sid":"${newId()}${this.#openTail}`);
  }

  connecting(socket: DirectSocket, auth: unknown): void {
    const policy = this.#endpoint.authorize({ auth: auth ?? {}, query: socket.query });
    if (policy === undefined) return this.#accept(socket, undefined);
    policy.then(
      (granted) => this.#accept(socket, granted),
      (error: unknown) => socket.refuse(error instanceof Error ? error.message : String(error)),
    );
  }

  #accept(socket: DirectSocket, policy: SharePolicy | undefined): void {
    // Closed while its token was checked.
    if (!socket.connecting) return;
    const id = this.#sockets.add(socket);
    if (id === undefined) return void socket.close('server full');
    socket.accept(id);
    this.#endpoint.opened(socket, policy, socket.address);
  }

  received(socket: DirectSocket, args: unknown[]): void {
    this.#endpoint.received(socket, args);
  }

  closed(socket: DirectSocket, reason: string): void {
    this.#wheel.remove(socket);
    this.#admission.left(socket.address);
    if (socket.id === '') return;
    this.#sockets.remove(socket);
    this.#endpoint.closed(socket, reason);
  }
}
