/**
 * Delivery between the nodes of a cluster over Redis pub/sub: each node
 * subscribes to one channel of its own, and a message to a socket goes to
 * the channel of the node its id names (see node-id.ts). Messages to this
 * node's own sockets never leave the process.
 *
 * Frames are a typed union that always carries the sender's node id; a node
 * drops its own frames and anything it cannot decode. They are encoded with
 * Node's structured serializer (node:v8), which keeps binary payloads binary
 * without a dependency; every node of a cluster runs the same Node major.
 * Payloads are carried opaque and never logged.
 *
 * One publisher connection to one subscriber keeps Redis pub/sub in order,
 * which is the order Delivery promises from one sender to one target.
 *
 * Notifications (`joiner-gone`, `sharer-gone`) wait for the end of the
 * current task and travel in one PUBLISH with whatever else goes to the
 * same node by then (a `B` batch frame): a launch that evicts the joiner's
 * oldest route sends its `joiner-gone` and the launch as one command, and
 * a sharer leaving tells all its joiners on a node at once. A relay
 * (launch, answer) never waits: it takes any notification held for its
 * node along, ahead of itself, so the order per node is kept.
 * @module
 */
import { deserialize, serialize } from 'node:v8';
import type { Redis } from 'ioredis';
import type { Delivery, DeliveryHandler } from '../core/delivery.js';
import type { DeliveryMessage, SocketId } from '../core/types.js';
import { nodeOf, type NodeId } from './node-id.js';
import { RawJson } from '../core/raw-json.js';

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

type Frame = Buffer | string;

/** Frames of one batch at most: past it the batch goes at once. */
const MAX_BATCH = 256;

export class RedisDelivery implements Delivery {
  readonly nodeId: NodeId;
  readonly #publisher: Redis;
  readonly #subscriber: Redis;
  readonly #prefix: string;
  readonly #channel: string;
  readonly #onDrop: ((reason: string, error?: unknown) => void) | undefined;
  #handler: DeliveryHandler | undefined;
  /** Notifications waiting for the end of the task, per target node, in send order. */
  readonly #held = new Map<NodeId, Frame[]>();
  #flushQueued = false;

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
    let frame: Frame;
    try {
      if ((message.kind === 'launch' || message.kind === 'answer') && message.message instanceof RawJson) {
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
    const held = this.#held.get(node);
    if (message.kind === 'joiner-gone' || message.kind === 'sharer-gone') {
      if (held === undefined) this.#held.set(node, [frame]);
      else if (held.push(frame) >= MAX_BATCH) this.#release(node, held);
      if (!this.#flushQueued) {
        this.#flushQueued = true;
        queueMicrotask(this.#flush);
      }
      return;
    }
    if (held === undefined) {
      this.#publish(node, frame);
      return;
    }
    held.push(frame);
    this.#release(node, held);
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

  #publish(node: NodeId, frame: Frame): void {
    this.#publisher.publish(this.#channelOf(node), frame).catch((error: unknown) => this.#onDrop?.('publish failed', error));
  }

  /** Sends what is held for `node` (and whatever was appended to it) in one PUBLISH. */
  #release(node: NodeId, frames: Frame[]): void {
    this.#held.delete(node);
    if (this.#publisher.status !== 'ready') {
      this.#onDrop?.('redis unreachable');
      return;
    }
    this.#publish(node, frames.length === 1 ? frames[0]! : encodeBatch(frames));
  }

  readonly #flush = (): void => {
    this.#flushQueued = false;
    for (const [node, frames] of this.#held) this.#release(node, frames);
  };

  readonly #onFrame = (channel: Buffer, data: Buffer): void => {
    if (channel.toString() !== this.#channel) return;
    if (data[0] !== BATCH_FRAME_BYTE) {
      this.#take(data);
      return;
    }
    // `B` then, per frame, its byte length (uint32 BE) and its bytes.
    let at = 1;
    while (at < data.length) {
      const end = at + 4 <= data.length ? at + 4 + data.readUInt32BE(at) : Infinity;
      if (end > data.length) {
        this.#onDrop?.('undecodable frame');
        return;
      }
      this.#take(data.subarray(at + 4, end));
      at = end;
    }
  };

  #take(data: Buffer): void {
    let frame: unknown;
    try {
      if (data[0] === BATCH_FRAME_BYTE) throw new Error('nested batch');
      frame = data[0] === JSON_FRAME_BYTE ? decodeJsonFrame(data) : deserialize(data);
    } catch (error) {
      this.#onDrop?.('undecodable frame', error);
      return;
    }
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
/** First byte of a batch of frames. */
const BATCH_FRAME_BYTE = 0x42;

/** `B` then, per frame, its byte length (uint32 BE) and its bytes. */
export function encodeBatch(frames: readonly Frame[]): Buffer {
  const parts = frames.map((f) => (typeof f === 'string' ? Buffer.from(f) : f));
  let size = 1;
  for (const part of parts) size += 4 + part.length;
  const batch = Buffer.allocUnsafe(size);
  batch[0] = BATCH_FRAME_BYTE;
  let at = 1;
  for (const part of parts) {
    batch.writeUInt32BE(part.length, at);
    part.copy(batch, at + 4);
    at += 4 + part.length;
  }
  return batch;
}

/** `J<header JSON>\n<message JSON text>`: JSON escapes newlines, so the first one ends the header. */
function decodeJsonFrame(data: Buffer): unknown {
  const text = data.toString('utf8');
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
