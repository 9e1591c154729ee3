/**
 * Delivery between the nodes of a cluster: over a direct link to the node
 * when one is open (node-links.ts), else over Redis pub/sub, where each
 * node subscribes to one channel of its own and a message to a socket goes
 * to the channel of the node its id names (see node-id.ts). The frames are
 * the same on both. Messages to this node's own sockets never leave the
 * process.
 *
 * Frames always carry the sender's node id; a node drops its own frames and
 * anything it cannot decode. A relayed message that arrived as JSON text,
 * and every notification, travels as an `R` text frame: its fields one
 * after the other, each prefixed with its length, and the relayed JSON text
 * as it came (see encodeTextFrame). Nothing is serialized to JSON or parsed
 * on the way: that cost most of a node's extra work per relay. Anything
 * else (binary payloads, and names or uids that are not well-formed UTF-16,
 * which UTF-8 cannot carry) goes with Node's structured serializer
 * (node:v8), which keeps binary binary without a dependency; every node of
 * a cluster runs the same Node major. Payloads are carried opaque and never
 * logged.
 *
 * One publisher connection to one subscriber keeps Redis pub/sub in order,
 * which is the order Delivery promises from one sender to one target.
 *
 * Text frames (`J` relays, `N` notifications) wait for the end of the
 * event-loop turn and travel to each node in one PUBLISH, as a `B` batch
 * frame when there are several: the launches, answers and notifications
 * one node sends another within a turn cost one command, one reply and one
 * pub/sub message, and all of the turn's commands leave in one `writev`
 * (redis-cork.ts). A node:v8 frame cannot join a batch: what is held for
 * its node is published just before it, so the order per node is kept.
 * `flush` writes everything at once: the core calls it before a relay is
 * acknowledged, so a client holding its ack can count on the relay having
 * reached Redis, as in one process it reached the peer. A node of an
 * earlier version drops `R` and `B` frames: upgrade every node of a
 * cluster together.
 * @module
 */
import { deserialize, serialize } from 'node:v8';
import type { Redis } from 'ioredis';
import type { Delivery, DeliveryHandler } from '../core/delivery.js';
import type { DeliveryMessage, SocketId } from '../core/types.js';
import { nodeOf, type NodeId } from './node-id.js';
import { RawJson } from '../core/raw-json.js';
import { detachedSlice } from '../core/detached-slice.js';
import { atTurnEnd, corkTurn, uncorkNow } from './redis-cork.js';
import { ADDRESS_BYTE, MARKER_BYTE, NodeLinks, QUERY_BYTE } from './node-links.js';

/** What a node:v8 frame holds. */
export type NodeFrame = { v: 1; type: 'deliver'; from: NodeId; target: SocketId; message: DeliveryMessage };

export interface RedisDeliveryOptions {
  /** Client that publishes (may be the registry's). Never closed here. */
  publisher: Redis;
  /** A dedicated client for SUBSCRIBE (e.g. `publisher.duplicate()`). Never closed here. */
  subscriber: Redis;
  nodeId: NodeId;
  /**
   * Channel names start with this.
   * @default 'sigserve:'
   */
  prefix?: string;
  /** A frame could not be sent or was dropped on arrival (never with its payload). */
  onDrop?: (reason: string, error?: unknown) => void;
  /** A direct link to `node` opened or closed (see node-links.ts). */
  onLinkChange?: (node: NodeId, open: boolean, reason?: string) => void;
  /**
   * Direct links to the other nodes (node-links.ts), with Redis pub/sub as
   * the fallback; absent: everything goes over Redis.
   */
  links?: { host: string; port: number };
}

/**
 * Frames of one batch at most, and their UTF-16 length: past either, the
 * batch goes at once. A batch is one string, joined from its frames (a
 * rope), which ioredis measures and encodes for the PUBLISH; past about
 * 64 KB that costs a node more per frame than the extra command saves, and
 * past 128 KB (V8 then allocates the flattened string in its large-object
 * space) twice as much: measured against a real redis-server, 7.5 µs per
 * 1.6 KB frame in batches of 8 to 32, 9 at 48, 20 at 80 and more. 32 K
 * characters (about 20 offers) keeps every batch in the flat part, and
 * under 128 KB of UTF-8 even when all of it is multi-byte.
 */
const MAX_BATCH = 256;
const MAX_BATCH_CHARS = 1 << 15;

/** Text frames held for one node, in send order. */
interface Batch {
  frames: string[];
  chars: number;
}

export class RedisDelivery implements Delivery {
  readonly nodeId: NodeId;
  readonly #publisher: Redis;
  readonly #subscriber: Redis;
  readonly #prefix: string;
  readonly #channel: string;
  readonly #onDrop: ((reason: string, error?: unknown) => void) | undefined;
  #handler: DeliveryHandler | undefined;
  readonly #links: NodeLinks | undefined;
  /** Text frames waiting for the end of the turn, per target node. */
  readonly #held = new Map<NodeId, Batch>();
  #releaseQueued = false;
  /** The subscriber's SUBSCRIBE to this node's channel is confirmed on its current connection. */
  #listening = false;
  #closed = false;

  constructor(options: RedisDeliveryOptions) {
    this.nodeId = options.nodeId;
    this.#publisher = options.publisher;
    this.#subscriber = options.subscriber;
    this.#prefix = options.prefix ?? 'sigserve:';
    this.#channel = this.#channelOf(this.nodeId);
    this.#onDrop = options.onDrop;
    this.#links =
      options.links &&
      new NodeLinks({
        ...options.links,
        nodeId: this.nodeId,
        publish: this.#publishSmall,
        onFrame: this.#take,
        onOpen: this.#linkOpened,
        onDrop: options.onDrop,
        onLinkChange: options.onLinkChange,
      });
  }

  /** Subscribes to this node's channel; ioredis re-subscribes after reconnects. */
  async start(): Promise<void> {
    this.#subscriber.on('messageBuffer', this.#onFrame);
    this.#subscriber.on('close', this.#onClose);
    this.#subscriber.on('ready', this.#onReady);
    await this.#subscriber.subscribe(this.#channel);
    this.#listening = this.#subscriber.status === 'ready';
    await this.#links?.start();
  }

  /** Direct links to other nodes this node dialed that are open now. */
  get openLinks(): number {
    return this.#links?.openLinks ?? 0;
  }

  /** Where this node's link listener listens, when links are on. */
  get linkAddress(): { address: string; port: number } | undefined {
    return this.#links?.address;
  }

  /**
   * Whether frames published to this node now reach it. Pub/sub keeps
   * nothing for a subscriber that is away, so between a reconnect and the
   * confirmed SUBSCRIBE every relay to this node is lost: the node is not
   * ready then (/readyz), and a load balancer sends it no one.
   */
  get listening(): boolean {
    return this.#listening;
  }

  readonly #onClose = (): void => {
    this.#listening = false;
  };

  // ioredis sends its own re-SUBSCRIBE before 'ready' reaches listeners, on
  // the same connection: the reply to this one comes after it, so once it
  // arrives the channel is subscribed again.
  readonly #onReady = (): void => {
    this.#subscriber.subscribe(this.#channel).then(
      () => {
        if (!this.#closed) this.#listening = this.#subscriber.status === 'ready';
      },
      () => undefined,
    );
  };

  send(target: SocketId, message: DeliveryMessage): void {
    const node = nodeOf(target);
    if (node === undefined || node === this.nodeId) {
      this.#handler?.(target, message);
      return;
    }
    // The common case (Redis up) needs no link lookup here: #transmit does it.
    if (this.#publisher.status !== 'ready' && this.#links?.linkTo(node) === undefined) {
      this.#onDrop?.('redis unreachable');
      return;
    }
    let frame: Buffer | string | undefined;
    try {
      frame = encodeTextFrame(this.nodeId, target, message) ?? serialize({ v: 1, type: 'deliver', from: this.nodeId, target, message: cloneable(message) } satisfies NodeFrame);
    } catch (error) {
      this.#onDrop?.('unencodable message', error);
      return;
    }
    if (typeof frame === 'string') {
      this.#hold(node, frame);
      return;
    }
    // A node:v8 frame cannot join a text batch: what is held for its node goes first.
    const held = this.#held.get(node);
    if (held !== undefined) this.#release(node, held);
    this.#transmit(node, frame);
  }

  /**
   * Writes out at once what this node has sent but not yet written: held
   * notifications and the commands corked for the rest of the turn.
   */
  flush(): void {
    if (this.#held.size > 0) this.#releaseAll();
    uncorkNow(this.#publisher);
  }

  canSend(target: SocketId): boolean {
    const node = nodeOf(target);
    return node === undefined || node === this.nodeId || this.#publisher.status === 'ready' || this.#links?.linkTo(node) !== undefined;
  }

  /** `node` is gone (the registry says so): its link, if any, is closed. */
  forgetNode(node: NodeId): void {
    this.#links?.forget(node);
  }

  onMessage(handler: DeliveryHandler): void {
    this.#handler = handler;
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#listening = false;
    this.#subscriber.off('messageBuffer', this.#onFrame);
    this.#subscriber.off('close', this.#onClose);
    this.#subscriber.off('ready', this.#onReady);
    await this.#links?.close();
    if (this.#subscriber.status === 'ready') await this.#subscriber.unsubscribe(this.#channel).catch(() => undefined);
  }

  #channelOf(node: NodeId): string {
    return `${this.#prefix}deliver:${node}`;
  }

  /** Written with the rest of this turn's commands (see redis-cork.ts), unless `flush` comes first. */
  #publish(node: NodeId, frame: Buffer | string): void {
    corkTurn(this.#publisher);
    this.#publisher.publish(this.#channelOf(node), frame).catch((error: unknown) => this.#onDrop?.('publish failed', error));
  }

  #hold(node: NodeId, frame: string): void {
    const held = this.#held.get(node);
    if (held === undefined) {
      this.#held.set(node, { frames: [frame], chars: frame.length });
    } else {
      held.frames.push(frame);
      held.chars += frame.length;
      if (held.frames.length >= MAX_BATCH || held.chars >= MAX_BATCH_CHARS) this.#release(node, held);
    }
    if (!this.#releaseQueued) {
      this.#releaseQueued = true;
      atTurnEnd(this.#releaseAll);
    }
  }

  /** Sends what is held for `node` as one frame. */
  #release(node: NodeId, held: Batch): void {
    this.#held.delete(node);
    this.#transmit(node, held.frames.length === 1 ? held.frames[0]! : encodeBatch(held.frames));
  }

  /** On the link to `node` when one is open, else in a PUBLISH to its channel. */
  #transmit(node: NodeId, frame: Buffer | string): void {
    const link = this.#links?.linkTo(node);
    if (link !== undefined && this.#links!.write(link, frame)) return;
    if (this.#publisher.status !== 'ready') {
      this.#onDrop?.('redis unreachable');
      return;
    }
    this.#publish(node, frame);
  }

  /**
   * A link to `node` opened: what is held for it, then the link's marker,
   * go over Redis, so the marker follows everything sent before (see
   * node-links.ts). The caller sends on the link only after this returns.
   */
  readonly #linkOpened = (node: NodeId, marker: string): boolean => {
    const held = this.#held.get(node);
    if (held !== undefined) this.#release(node, held);
    return this.#publishSmall(node, marker);
  };

  /** For node-links.ts: a frame of its own, over Redis. */
  readonly #publishSmall = (node: NodeId, frame: string): boolean => {
    if (this.#publisher.status !== 'ready') return false;
    this.#publish(node, frame);
    return true;
  };

  readonly #releaseAll = (): void => {
    this.#releaseQueued = false;
    for (const [node, held] of this.#held) this.#release(node, held);
  };

  readonly #onFrame = (channel: Buffer, data: Buffer): void => {
    if (channel.toString() !== this.#channel) return;
    switch (data[0]) {
      case MARKER_BYTE:
        this.#links?.markerSeen(data);
        return;
      case QUERY_BYTE:
        this.#links?.queried(data);
        return;
      case ADDRESS_BYTE:
        this.#links?.addressed(data);
        return;
      default:
        this.#take(data);
    }
  };

  /** A frame for this node, from Redis or a link. */
  readonly #take = (data: Buffer): void => {
    const first = data[0];
    if (first !== TEXT_FRAME_BYTE && first !== BATCH_FRAME_BYTE) {
      this.#takeSerialized(data);
      return;
    }
    const text = data.toString('utf8');
    if (first === TEXT_FRAME_BYTE) {
      this.#takeText(text, 0, text.length);
      return;
    }
    // `B` then, per frame, `<length in UTF-16 code units>:<frame>`.
    let at = 1;
    while (at < text.length) {
      const start = fieldAt(text, at, text.length);
      if (start < 0) {
        // The framing is broken: nothing after this point can be trusted.
        this.#onDrop?.('undecodable frame');
        return;
      }
      const end = fieldEnd;
      this.#takeText(text, start, end);
      at = end;
    }
  };

  /** An `R` frame: text[start, end) (batches do not nest). */
  #takeText(text: string, start: number, end: number): void {
    const decoded = text.charCodeAt(start) === TEXT_FRAME_BYTE ? decodeTextFrame(text, start, end) : undefined;
    if (decoded === undefined) {
      this.#onDrop?.('undecodable frame');
      return;
    }
    if (decoded.from === this.nodeId) return;
    this.#deliver(decoded.target, decoded.message);
  }

  #takeSerialized(data: Buffer): void {
    let frame: unknown;
    try {
      frame = deserialize(data);
    } catch (error) {
      this.#onDrop?.('undecodable frame', error);
      return;
    }
    if (!isFrame(frame)) {
      this.#onDrop?.('malformed frame');
      return;
    }
    if (frame.from === this.nodeId) return;
    this.#deliver(frame.target, frame.message);
  }

  #deliver(target: SocketId, message: DeliveryMessage): void {
    try {
      this.#handler?.(target, message);
    } catch (error) {
      this.#onDrop?.('handler failed', error);
    }
  }
}

const str = (v: unknown): v is string => typeof v === 'string';

/** First byte of a text frame (node:v8's start with 0xFF). */
const TEXT_FRAME = 'R';
const TEXT_FRAME_BYTE = 0x52;
/** First byte of a batch of text frames. */
const BATCH_FRAME_BYTE = 0x42;

/** Kind letters of a text frame, and the message kinds they stand for. */
const KIND_LETTER = { launch: 'l', answer: 'a', 'sharer-gone': 's', 'joiner-gone': 'j' } as const;
const LAUNCH = 0x6c;
const ANSWER = 0x61;
const SHARER_GONE = 0x73;
const JOINER_GONE = 0x6a;

/**
 * `R`, the kind's letter, then `<length>:<text>` for the sender's node id,
 * the target socket, the peer socket (the launch's joiner, the answer's
 * sharer, the one gone), the share name and the joiner uid; a relay goes on
 * with `<sentAt>;` and the relayed message's JSON text, which runs to the
 * frame's end. Lengths count UTF-16 code units. Undefined when the message
 * needs a node:v8 frame: a payload that is not a RawJson, or a name or uid
 * that is not well-formed UTF-16 (a lone surrogate would not survive the
 * UTF-8 of the wire). Ids are the nodes' own, JSON text comes well-formed
 * out of a decoded frame.
 */
export function encodeTextFrame(from: NodeId, target: SocketId, message: DeliveryMessage): string | undefined {
  if (!message.name.isWellFormed() || !message.uid.isWellFormed()) return undefined;
  const peer = peerOf(message);
  const head =
    `${TEXT_FRAME}${KIND_LETTER[message.kind]}${from.length}:${from}${target.length}:${target}` +
    `${peer.length}:${peer}${message.name.length}:${message.name}${message.uid.length}:${message.uid}`;
  if (message.kind === 'sharer-gone' || message.kind === 'joiner-gone') return head;
  if (!(message.message instanceof RawJson)) return undefined;
  return `${head}${message.sentAt};${message.message.text}`;
}

/** A structured clone would drop a RawJson's text: such a payload goes as its value. */
const cloneable = (message: DeliveryMessage): DeliveryMessage =>
  'message' in message && message.message instanceof RawJson ? { ...message, message: message.message.value } : message;

const peerOf = (message: DeliveryMessage): SocketId =>
  message.kind === 'launch' || message.kind === 'joiner-gone' ? message.joiner : message.sharer;

/** Where the field ends that `fieldAt` found last. */
let fieldEnd = 0;

/**
 * Reads `<length>:` at `at` (at most 10 digits) and returns where the
 * field's text starts, with its end in `fieldEnd`; -1 when there is no
 * length there or the field would run past `end`.
 */
function fieldAt(text: string, at: number, end: number): number {
  let length = 0;
  let digit = at;
  for (let c = text.charCodeAt(digit); c >= 0x30 && c <= 0x39 && digit - at < 10; c = text.charCodeAt(++digit)) length = length * 10 + c - 0x30;
  const start = digit + 1;
  if (digit === at || text.charCodeAt(digit) !== 0x3a || start + length > end) return -1;
  fieldEnd = start + length;
  return start;
}

/** The field at `fieldEnd` (a detachedSlice), moving `fieldEnd` past it; undefined when there is none, and after that. */
function nextField(text: string, end: number): string | undefined {
  if (fieldEnd < 0) return undefined;
  const start = fieldAt(text, fieldEnd, end);
  if (start < 0) {
    fieldEnd = -1;
    return undefined;
  }
  return detachedSlice(text, start, fieldEnd);
}

/** The text frame in text[start, end) (see encodeTextFrame), or undefined when it does not decode. */
function decodeTextFrame(text: string, start: number, end: number): { from: NodeId; target: SocketId; message: DeliveryMessage } | undefined {
  const kind = text.charCodeAt(start + 1);
  fieldEnd = start + 2;
  // Five fields, read one after the other (locals, not an array to destructure: that would run the iterator protocol).
  const from = nextField(text, end);
  const target = nextField(text, end);
  const peer = nextField(text, end);
  const name = nextField(text, end);
  const uid = nextField(text, end);
  if (from === undefined || target === undefined || peer === undefined || name === undefined || uid === undefined) return undefined;
  const at = fieldEnd;
  if (kind === SHARER_GONE || kind === JOINER_GONE) {
    if (at !== end) return undefined;
    const message: DeliveryMessage = kind === SHARER_GONE ? { kind: 'sharer-gone', name, uid, sharer: peer } : { kind: 'joiner-gone', name, uid, joiner: peer };
    return { from, target, message };
  }
  if (kind !== LAUNCH && kind !== ANSWER) return undefined;
  const semicolon = text.indexOf(';', at);
  if (semicolon < 0 || semicolon >= end) return undefined;
  const sentAt = Number(text.slice(at, semicolon));
  if (semicolon === at || !Number.isFinite(sentAt)) return undefined;
  // The sending node parsed and checked it; it is parsed again here only if something needs the value.
  const relayed = new RawJson(text.slice(semicolon + 1, end));
  const message: DeliveryMessage =
    kind === LAUNCH
      ? { kind: 'launch', name, uid, joiner: peer, message: relayed, sentAt }
      : { kind: 'answer', name, uid, sharer: peer, message: relayed, sentAt };
  return { from, target, message };
}

/**
 * `B` then, per frame, `<length in UTF-16 code units>:<frame>`. Frames hold
 * well-formed text (see encodeTextFrame), so UTF-8 keeps every length.
 */
export function encodeBatch(frames: readonly string[]): string {
  let batch = 'B';
  for (const frame of frames) batch += `${frame.length}:${frame}`;
  return batch;
}

function isFrame(value: unknown): value is NodeFrame {
  if (typeof value !== 'object' || value === null) return false;
  const f = value as Record<string, unknown>;
  if (f['v'] !== 1 || f['type'] !== 'deliver' || !str(f['from']) || !str(f['target'])) return false;
  const m = f['message'] as Record<string, unknown> | null;
  if (typeof m !== 'object' || m === null || !str(m['name']) || !str(m['uid'])) return false;
  switch (m['kind']) {
    case 'launch':
      return str(m['joiner']) && typeof m['sentAt'] === 'number' && 'message' in m;
    case 'answer':
      return str(m['sharer']) && typeof m['sentAt'] === 'number' && 'message' in m;
    case 'sharer-gone':
      return str(m['sharer']);
    case 'joiner-gone':
      return str(m['joiner']);
    default:
      return false;
  }
}
