/**
 * Delivery between the nodes of a cluster over Redis pub/sub: each node
 * subscribes to one channel of its own, and a message to a socket goes to
 * the channel of the node its id names (see node-id.ts). Messages to this
 * node's own sockets never leave the process.
 *
 * Frames are a typed union that always carries the sender's node id; a node
 * drops its own frames and anything it cannot decode. A relayed message that
 * arrived as JSON text travels as that text (`J` frames); notifications,
 * which hold only strings, as JSON (`N`); anything else (binary payloads)
 * with Node's structured serializer (node:v8), which keeps binary binary
 * without a dependency; every node of a cluster runs the same Node major.
 * Payloads are carried opaque and never logged.
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
 * earlier version drops `N` and `B` frames: upgrade every node of a
 * cluster together.
 * @module
 */
import { deserialize, serialize } from 'node:v8';
import type { Redis } from 'ioredis';
import type { Delivery, DeliveryHandler } from '../core/delivery.js';
import type { DeliveryMessage, SocketId } from '../core/types.js';
import { nodeOf, type NodeId } from './node-id.js';
import { RawJson } from '../core/raw-json.js';
import { atTurnEnd, corkTurn, uncorkNow } from './redis-cork.js';

/**
 * What travels between nodes. `deliver-json`: the relayed message is a
 * RawJson, carried as its JSON text (a node that does not know the type
 * drops the frame rather than deliver the text as a string).
 */
export type NodeFrame = { v: 1; type: 'deliver' | 'deliver-json'; from: NodeId; target: SocketId; message: DeliveryMessage };

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
}

/** Frames of one batch at most, and their UTF-16 length: past either, the batch goes at once. */
const MAX_BATCH = 256;
const MAX_BATCH_CHARS = 1 << 20;

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
  /** Text frames waiting for the end of the turn, per target node. */
  readonly #held = new Map<NodeId, Batch>();
  #releaseQueued = false;

  constructor(options: RedisDeliveryOptions) {
    this.nodeId = options.nodeId;
    this.#publisher = options.publisher;
    this.#subscriber = options.subscriber;
    this.#prefix = options.prefix ?? 'sigserve:';
    this.#channel = this.#channelOf(this.nodeId);
    this.#onDrop = options.onDrop;
  }

  /** Subscribes to this node's channel; ioredis re-subscribes after reconnects. */
  async start(): Promise<void> {
    this.#subscriber.on('messageBuffer', this.#onFrame);
    await this.#subscriber.subscribe(this.#channel);
  }

  send(target: SocketId, message: DeliveryMessage): void {
    const node = nodeOf(target);
    if (node === undefined || node === this.nodeId) {
      this.#handler?.(target, message);
      return;
    }
    if (this.#publisher.status !== 'ready') {
      this.#onDrop?.('redis unreachable');
      return;
    }
    let frame: Buffer | string;
    try {
      if (message.kind === 'joiner-gone' || message.kind === 'sharer-gone') {
        // Strings only: JSON costs a fraction of a structured clone.
        frame = NOTE_FRAME + JSON.stringify({ v: 1, type: 'deliver', from: this.nodeId, target, message } satisfies NodeFrame);
      } else if (message.message instanceof RawJson) {
        // The relayed message's JSON text after a JSON header: no structured
        // clone of a 1-2 KB string on either side.
        const header = { v: 1, type: 'deliver-json', from: this.nodeId, target, message: { ...message, message: undefined } };
        frame = `${JSON_FRAME}${JSON.stringify(header)}\n${message.message.text}`;
      } else {
        frame = serialize({ v: 1, type: 'deliver', from: this.nodeId, target, message } satisfies NodeFrame);
      }
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
    this.#publish(node, frame);
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
    return node === undefined || node === this.nodeId || this.#publisher.status === 'ready';
  }

  onMessage(handler: DeliveryHandler): void {
    this.#handler = handler;
  }

  async close(): Promise<void> {
    this.#subscriber.off('messageBuffer', this.#onFrame);
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

  /** Sends what is held for `node` in one PUBLISH. */
  #release(node: NodeId, held: Batch): void {
    this.#held.delete(node);
    if (this.#publisher.status !== 'ready') {
      this.#onDrop?.('redis unreachable');
      return;
    }
    this.#publish(node, held.frames.length === 1 ? held.frames[0]! : encodeBatch(held.frames));
  }

  readonly #releaseAll = (): void => {
    this.#releaseQueued = false;
    for (const [node, held] of this.#held) this.#release(node, held);
  };

  readonly #onFrame = (channel: Buffer, data: Buffer): void => {
    if (channel.toString() !== this.#channel) return;
    const first = data[0];
    if (first !== JSON_FRAME_BYTE && first !== NOTE_FRAME_BYTE && first !== BATCH_FRAME_BYTE) {
      this.#takeDecoded(deserialize, data);
      return;
    }
    const text = data.toString('utf8');
    if (first !== BATCH_FRAME_BYTE) {
      this.#takeDecoded(decodeTextFrame, text);
      return;
    }
    // `B` then, per frame, `<length in UTF-16 code units>:<frame>`.
    let at = 1;
    while (at < text.length) {
      let length = 0;
      let digit = at;
      for (let c = text.charCodeAt(digit); c >= 0x30 && c <= 0x39 && digit - at < 10; c = text.charCodeAt(++digit)) length = length * 10 + c - 0x30;
      const start = digit + 1;
      if (digit === at || text.charCodeAt(digit) !== 0x3a || start + length > text.length) {
        this.#onDrop?.('undecodable frame');
        return;
      }
      // A `J` or `N` frame: batches do not nest.
      this.#takeDecoded(decodeTextFrame, text.slice(start, start + length));
      at = start + length;
    }
  };

  /** Decodes one frame (a node:v8 one, or a `J` or `N` text frame) and takes it; drops what does not decode. */
  #takeDecoded<T>(decode: (input: T) => unknown, input: T): void {
    let frame: unknown;
    try {
      frame = decode(input);
    } catch (error) {
      this.#onDrop?.('undecodable frame', error);
      return;
    }
    this.#take(frame);
  }

  #take(frame: unknown): void {
    if (!isFrame(frame)) {
      this.#onDrop?.('malformed frame');
      return;
    }
    if (frame.from === this.nodeId) return;
    if (frame.type === 'deliver-json') {
      // The sending node parsed and checked it; it is parsed again here only if something needs the value.
      const m = frame.message as { message: unknown };
      m.message = new RawJson(m.message as string);
    }
    try {
      this.#handler?.(frame.target, frame.message);
    } catch (error) {
      this.#onDrop?.('handler failed', error);
    }
  }
}

const str = (v: unknown): v is string => typeof v === 'string';

/** First byte of a `deliver-json` frame (node:v8's start with 0xFF). */
const JSON_FRAME = 'J';
const JSON_FRAME_BYTE = 0x4a;
/** `N<frame JSON>`: a notification (strings only). */
const NOTE_FRAME = 'N';
const NOTE_FRAME_BYTE = 0x4e;
/** First byte of a batch of text frames. */
const BATCH_FRAME_BYTE = 0x42;

/**
 * `B` then, per frame, `<length in UTF-16 code units>:<frame>`. Frames are
 * JSON-escaped text (no lone surrogates), so UTF-8 keeps every length.
 */
export function encodeBatch(frames: readonly string[]): string {
  let batch = 'B';
  for (const frame of frames) batch += `${frame.length}:${frame}`;
  return batch;
}

function decodeTextFrame(text: string): unknown {
  if (text.charCodeAt(0) === JSON_FRAME_BYTE) return decodeJsonFrame(text);
  if (text.charCodeAt(0) !== NOTE_FRAME_BYTE) throw new Error('not a text frame');
  const frame = JSON.parse(text.slice(1)) as { type?: unknown } | null;
  if (frame?.type !== 'deliver') throw new Error('not a notification frame');
  return frame;
}

/** `J<header JSON>\n<message JSON text>`: JSON escapes newlines, so the first one ends the header. */
function decodeJsonFrame(text: string): unknown {
  const end = text.indexOf('\n');
  if (end < 0) throw new Error('no header end');
  const frame = JSON.parse(text.slice(1, end)) as { type?: unknown; message?: Record<string, unknown> } | null;
  if (typeof frame !== 'object' || frame === null || frame.type !== 'deliver-json' || typeof frame.message !== 'object' || frame.message === null) {
    throw new Error('not a deliver-json frame');
  }
  frame.message['message'] = text.slice(end + 1);
  return frame;
}

function isFrame(value: unknown): value is NodeFrame {
  if (typeof value !== 'object' || value === null) return false;
  const f = value as Record<string, unknown>;
  if (f['v'] !== 1 || (f['type'] !== 'deliver' && f['type'] !== 'deliver-json') || !str(f['from']) || !str(f['target'])) return false;
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
