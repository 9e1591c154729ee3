/**
 * Direct TCP links between the nodes of a cluster, for delivery only: the
 * registry stays in Redis. A relay over Redis pub/sub costs the sending
 * node a PUBLISH to encode and a reply to parse, and the receiving node a
 * RESP push to parse; over a link it is one length-prefixed write and one
 * read (measured in bench/RESULTS.md, phase 18). Redis pub/sub stays the
 * fallback: a node sends over Redis whenever it has no open link to the
 * target, and every node keeps its channel subscribed.
 *
 * Finding a node: each node listens on a port of its own. The first time a
 * node sends another something (and again after a failure, with a
 * backoff) it publishes a query to that node's channel, and the node
 * publishes back where it listens and a token. Nothing is written to Redis
 * keys: once every client has left, no key remains (the cluster's promise).
 *
 * Trust: the dialer's first frame (the hello) must carry the token, which
 * only ever travels through the cluster's Redis, so only what can use that
 * Redis can send on a link, as only it can publish to a node's channel. Before the
 * hello a connection may send 256 bytes and has 5 s; a node holds at most
 * 64 such connections.
 *
 * Order: messages from one node to another must arrive in the order sent
 * (core/delivery.ts), and until a link opens they went over Redis. So the
 * dialer, once connected, publishes a marker naming the new link over
 * Redis, after everything it published before, and only then sends on the
 * link; the listener holds what the link brings until the marker has come
 * through Redis. When a link breaks, what it carried and the peer had not
 * read is lost, as a PUBLISH to a node that is away is; later messages go
 * over Redis until a new link (and its marker) is up.
 * @module
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import type { NodeId } from './node-id.js';
import { encodeLinkFrame, LinkFrameReader } from './link-frames.js';

export interface NodeLinksOptions {
  nodeId: NodeId;
  /** Address to listen on, which the other nodes dial. */
  host: string;
  /** Port to listen on; 0 for any free one. */
  port: number;
  /** Publishes a small frame (a query or an address) to `node`'s channel; false when Redis is away. */
  publish: (node: NodeId, frame: string) => boolean;
  /** A frame from another node, in order, once its link's marker has come. */
  onFrame: (frame: Buffer) => void;
  /**
   * A link to `node` is connected: publish the marker frame `marker` to
   * `node` over Redis after everything sent to it before, and return true;
   * false (nothing could be published) abandons the link.
   */
  onOpen: (node: NodeId, marker: string) => boolean;
  /** A link failed or something on one was dropped (never with a payload). */
  onDrop?: (reason: string, error?: unknown) => void;
  /** A link this node dialed opened, or one that was open closed (for logs). */
  onLinkChange?: (node: NodeId, open: boolean, reason?: string) => void;
}

/**
 * First bytes of the frames links publish over Redis (R and B are text
 * frames, 0xFF node:v8): a marker, a query for a node's address, an address.
 */
export const MARKER_BYTE = 0x4c; // 'L'
export const QUERY_BYTE = 0x51; // 'Q'
export const ADDRESS_BYTE = 0x41; // 'A'
const MARKER = 'L';
const QUERY = 'Q';
const ADDRESS = 'A';

/** Longest frame on a link (a batch is at most ~128 KB; a binary relay is bounded by the message size limit). */
const MAX_FRAME = 64 << 20;
const MAX_HELLO = 256;
const HELLO_TIMEOUT = 5000;
const MAX_UNAUTHENTICATED = 64;
/** How long a link's frames wait for its marker before the link is closed. */
const MARKER_TIMEOUT = 5000;
/** Bytes waiting to be written to one link past which its peer counts as stuck. */
const MAX_BACKLOG = 32 << 20;
/** How long a query for an address, then the TCP connect, may take. */
const CONNECT_TIMEOUT = 2000;
const RETRY_MIN = 500;
const RETRY_MAX = 30_000;

/** A link this node dialed. */
interface Outgoing {
  state: 'dialing' | 'open' | 'down';
  socket: Socket | undefined;
  /** Until the address comes back. */
  timer: NodeJS.Timeout | undefined;
  failures: number;
  /** When a down link may be dialed again (Date.now()). */
  retryAt: number;
}

/** A link another node dialed. */
interface Incoming {
  socket: Socket;
  reader: LinkFrameReader;
  /** Set by a valid hello. */
  linkId: string | undefined;
  /** Frames waiting for the marker; undefined once it has come. */
  held: Buffer[] | undefined;
  timer: NodeJS.Timeout | undefined;
}

export class NodeLinks {
  readonly #o: NodeLinksOptions;
  readonly #token = randomBytes(18).toString('base64url');
  readonly #out = new Map<NodeId, Outgoing>();
  readonly #in = new Set<Incoming>();
  /** Incoming links by link id, once their hello came, until their marker does. */
  readonly #awaiting = new Map<string, Incoming>();
  /** Markers that came before their link's hello (forgotten all at once past 1024: a link's hello comes within milliseconds). */
  readonly #early = new Set<string>();
  #server: Server | undefined;
  /** What an address frame from this node says. */
  #addressFrame = '';
  #unauthenticated = 0;
  #open = 0;
  #closed = false;

  constructor(options: NodeLinksOptions) {
    this.#o = options;
  }

  /** Listens; queries are answered from then on. */
  async start(): Promise<void> {
    const server = createServer(this.#accept);
    this.#server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host: this.#o.host, port: this.#o.port }, () => {
        server.off('error', reject);
        resolve();
      });
    });
    server.on('error', (error) => this.#o.onDrop?.('link listener failed', error));
    const address = server.address() as AddressInfo;
    this.#addressFrame = `${ADDRESS}${this.#o.nodeId} ${address.address} ${address.port} ${this.#token}`;
  }

  /** Links this node dialed that are open now. */
  get openLinks(): number {
    return this.#open;
  }

  /** Where this node listens. */
  get address(): AddressInfo | undefined {
    return (this.#server?.address() as AddressInfo | null) ?? undefined;
  }

  /**
   * The open link to `node`, or undefined (send over Redis then); the first
   * call, and any after a failure's backoff, starts dialing it.
   */
  linkTo(node: NodeId): Socket | undefined {
    const out = this.#out.get(node);
    if (out !== undefined) {
      // A socket that failed is closing: its 'close' marks the link down.
      if (out.state === 'open') return out.socket!.writable ? out.socket : undefined;
      if (out.state === 'dialing' || Date.now() < out.retryAt) return undefined;
    }
    if (!this.#closed) this.#dial(node, out);
    return undefined;
  }

  /** Writes one frame on an open link; false when the link is stuck (it is closed then). */
  write(socket: Socket, frame: string | Buffer): boolean {
    socket.write(encodeLinkFrame(frame));
    if (socket.writableLength <= MAX_BACKLOG) return true;
    this.#o.onDrop?.('link backlog');
    socket.destroy();
    return false;
  }

  /** A query came over Redis (`Q<node>`): that node is told where to dial. */
  queried(query: Buffer): void {
    if (this.#addressFrame === '' || this.#closed) return;
    const node = query.toString('latin1', 1);
    if (node !== this.#o.nodeId) this.#o.publish(node, this.#addressFrame);
  }

  /** An address came over Redis (`A<node> <host> <port> <token>`): a link dialing that node connects. */
  addressed(frame: Buffer): void {
    const [node, host, port, token] = frame.toString('latin1', 1).split(' ');
    if (node === undefined || host === undefined || port === undefined || token === undefined) return;
    const out = this.#out.get(node);
    if (out === undefined || out.state !== 'dialing' || out.socket !== undefined) return;
    clearTimeout(out.timer);
    this.#connect(node, out, host, Number(port), token);
  }

  /** A marker came over Redis: its link's frames may go on. */
  markerSeen(marker: Buffer): void {
    const linkId = marker.toString('latin1', 1);
    const link = this.#awaiting.get(linkId);
    if (link === undefined) {
      if (this.#early.size >= 1024) this.#early.clear();
      this.#early.add(linkId);
      return;
    }
    this.#release(link);
  }

  /** `node` is gone (the registry says so): its link, if any, is closed. */
  forget(node: NodeId): void {
    const out = this.#out.get(node);
    if (out === undefined) return;
    this.#out.delete(node);
    this.#down(node, out, 'node gone');
  }

  async close(): Promise<void> {
    this.#closed = true;
    for (const [node, out] of this.#out) this.#down(node, out, 'closing');
    this.#out.clear();
    for (const link of this.#in) link.socket.destroy();
    const server = this.#server;
    if (server !== undefined) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  #dial(node: NodeId, previous: Outgoing | undefined): void {
    const out: Outgoing = { state: 'dialing', socket: undefined, timer: undefined, failures: previous?.failures ?? 0, retryAt: 0 };
    this.#out.set(node, out);
    // A node with links off, or of an earlier version, never answers.
    out.timer = setTimeout(() => this.#down(node, out, 'no link to dial'), CONNECT_TIMEOUT);
    out.timer.unref();
    if (!this.#o.publish(node, `${QUERY}${this.#o.nodeId}`)) this.#down(node, out, 'redis unreachable');
  }

  #connect(node: NodeId, out: Outgoing, host: string, port: number, token: string): void {
    const socket = connect({ host, port, noDelay: true, keepAlive: true, keepAliveInitialDelay: 10_000 });
    out.socket = socket;
    socket.setTimeout(CONNECT_TIMEOUT, () => socket.destroy(new Error('connect timeout')));
    socket.once('connect', () => {
      socket.setTimeout(0);
      if (this.#out.get(node) !== out) return void socket.destroy();
      const linkId = randomBytes(9).toString('base64url');
      socket.write(encodeLinkFrame(`H1 ${this.#o.nodeId} ${node} ${linkId} ${token}`));
      if (!this.#o.onOpen(node, `${MARKER}${linkId}`)) return void socket.destroy();
      out.state = 'open';
      out.failures = 0;
      this.#open++;
      this.#o.onLinkChange?.(node, true);
    });
    // Nothing comes back on a link; reading notices the peer closing it.
    socket.on('data', () => undefined);
    socket.on('error', () => undefined);
    socket.once('close', () => this.#down(node, out, out.state === 'open' ? 'link closed' : 'link refused'));
  }

  #down(node: NodeId, out: Outgoing, reason: string): void {
    if (out.state === 'down') return;
    const wasOpen = out.state === 'open';
    out.state = 'down';
    clearTimeout(out.timer);
    out.socket?.destroy();
    out.socket = undefined;
    out.retryAt = Date.now() + Math.min(RETRY_MAX, RETRY_MIN * 2 ** out.failures);
    out.failures++;
    if (wasOpen) this.#open--;
    if (this.#closed) return;
    if (wasOpen) this.#o.onLinkChange?.(node, false, reason);
    this.#o.onDrop?.(reason);
  }

  readonly #accept = (socket: Socket): void => {
    if (this.#closed || this.#unauthenticated >= MAX_UNAUTHENTICATED) return void socket.destroy();
    this.#unauthenticated++;
    socket.setNoDelay(true);
    const link: Incoming = { socket, reader: new LinkFrameReader(MAX_HELLO), linkId: undefined, held: [], timer: undefined };
    this.#in.add(link);
    link.timer = setTimeout(() => socket.destroy(), HELLO_TIMEOUT);
    socket.on('data', (chunk: Buffer) => {
      if (!link.reader.push(chunk, (frame) => this.#take(link, frame))) socket.destroy();
    });
    socket.on('error', () => undefined);
    socket.once('close', () => {
      clearTimeout(link.timer);
      this.#in.delete(link);
      if (link.linkId === undefined) this.#unauthenticated--;
      else this.#awaiting.delete(link.linkId);
      if (link.held !== undefined && link.held.length > 0) this.#o.onDrop?.('link closed before its marker');
    });
  };

  #take(link: Incoming, frame: Buffer): void {
    if (link.held === undefined) {
      this.#o.onFrame(frame);
      return;
    }
    if (link.linkId !== undefined) {
      link.held.push(frame);
      return;
    }
    // The hello: `H1 <from> <to> <link id> <token>`.
    const [version, from, to, linkId, token] = frame.toString('latin1').split(' ');
    if (version !== 'H1' || from === undefined || to !== this.#o.nodeId || linkId === undefined || token === undefined || !sameToken(token, this.#token)) {
      link.reader.stop();
      link.socket.destroy();
      return;
    }
    clearTimeout(link.timer);
    this.#unauthenticated--;
    link.linkId = linkId;
    link.reader.limit = MAX_FRAME;
    if (this.#early.delete(linkId)) {
      link.held = undefined;
      return;
    }
    this.#awaiting.set(linkId, link);
    link.timer = setTimeout(() => {
      this.#o.onDrop?.('link marker missing');
      link.socket.destroy();
    }, MARKER_TIMEOUT);
  }

  /** `link` (awaiting, so its hello came) has its marker: what it held goes on, and the rest at once. */
  #release(link: Incoming): void {
    clearTimeout(link.timer);
    this.#awaiting.delete(link.linkId!);
    const held = link.held!;
    link.held = undefined;
    for (const frame of held) this.#o.onFrame(frame);
  }
}

function sameToken(given: string, own: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(own);
  return a.length === b.length && timingSafeEqual(a, b);
}
