/**
 * Reading a direct socket's frames: each chunk its TCP socket reads goes
 * to ws's Receiver by the Receiver's own `_write`, not through
 * `Writable.write`.
 *
 * ws's Receiver is a Writable, and ws feeds it with `receiver.write(chunk)`.
 * For a connection that negotiated no extension and lets ws emit messages
 * synchronously (the direct engine's, always), the Receiver parses the
 * chunk and calls back before `_write` returns, so the Writable around it
 * only adds its bookkeeping and an `afterWrite` scheduled with
 * `process.nextTick` for every chunk. At 500 pairs, where each read brings
 * one chunk per socket, skipping them measured about 2 % of the server's
 * CPU (bench/RESULTS.md, phase 8).
 *
 * What the Receiver does with the chunk is unchanged: it parses frames,
 * unmasks, checks UTF-8, the payload limit and close codes, and emits
 * messages. An error it reports destroys it with that error, as
 * `Writable.write` would (ws then closes the connection with the error's
 * status code). Whatever the Writable would have buffered (a chunk while it
 * is corked, writing or holding data, which the direct engine never causes)
 * goes through `write` as before. After a close frame or an error, chunks
 * are dropped: ws stops feeding the Receiver then too (it has ended or
 * been destroyed by then).
 *
 * Text frames are read here first, while the Receiver holds nothing. A
 * chunk that starts with complete, final, masked text frames (each message
 * of the relay, in one frame, one or several per read) has them unmasked
 * where they lie, checked for UTF-8, and handed to the websocket's one
 * `message` listener, as the Receiver would emit them: without its state
 * machine, which for a frame costs eight Buffer views, an array and two
 * emits (about 5 % of the server's CPU at 500 pairs, bench/RESULTS.md,
 * phase 12). Whatever is not such a frame (a control or binary frame, a
 * fragment, a frame cut by the read, one over the payload limit, unmasked,
 * or with bad UTF-8, whose payload is masked again first) goes to the
 * Receiver with all that follows, and it takes over until it holds nothing
 * again: every refusal and every close code stays ws's own.
 *
 * The hook leans on ws internals: the TCP socket's `socketOnData` listener,
 * the symbol that links that socket to its WebSocket, the Receiver's
 * `_write`, `_writableState` and parser state (`_state`, `_bufferedBytes`,
 * `_fragmented`, `_maxPayload`). When one of them is not as expected,
 * `feedReceiver` leaves ws's own path in place (test/direct-websocket.test.ts
 * notices).
 * @module
 */
import { isUtf8 } from 'node:buffer';
import type { Socket } from 'node:net';
import type { WebSocket } from 'ws';
import { unmaskPayload } from './ws-unmask.js';

/** The parts of a Writable's state that say whether it would queue a write. */
interface WritableFlags {
  length: number;
  writing: boolean;
  corked: number;
  ending: boolean;
  destroyed: boolean;
  errored: unknown;
}

interface Receiver {
  _writableState?: WritableFlags;
  _allowSynchronousEvents?: boolean;
  /** 0 (GET_INFO) between frames. */
  _state?: number;
  _bufferedBytes?: number;
  /** The opcode of a fragmented message under way; 0 when none. */
  _fragmented?: number;
  /** 0 for no limit. */
  _maxPayload?: number;
  _write?(chunk: Buffer, encoding: undefined, done: (error?: Error) => void): void;
  write(chunk: Buffer): boolean;
  destroy(error: Error): void;
}

interface WebSocketInternals {
  _socket?: Socket;
  _receiver?: Receiver;
}

/** ws's symbol for the WebSocket a TCP socket carries, found on the first connection. */
let carried: symbol | undefined;

// The Receiver being fed: with synchronous events and no extension its
// callback comes before `_write` returns, so one slot serves every socket.
let feeding: Receiver | undefined;
function fed(error?: Error): void {
  if (error) feeding?.destroy(error);
}

/** A websocket's `message` listener, which text frames read here go to. */
export type MessageListener = (this: WebSocket, data: Buffer, isBinary: false) => void;

/** ws's Receiver between frames, holding nothing. */
const GET_INFO = 0;
/** The first byte of a final, uncompressed text frame. */
const FINAL_TEXT = 0x81;

/**
 * The offset in `chunk` up to which complete, final, masked text frames
 * were read and handed to `listener`; the Receiver gets the rest.
 */
function readTextFrames(ws: WebSocket, receiver: Receiver, state: WritableFlags, chunk: Buffer, listener: MessageListener): number {
  const maxPayload = receiver._maxPayload!;
  const end = chunk.length;
  let at = 0;
  // A frame with its 4-byte key takes at least 6 bytes.
  while (end - at >= 6 && chunk[at] === FINAL_TEXT) {
    const second = chunk[at + 1]!;
    // Unmasked: the Receiver refuses it.
    if (second < 0x80) break;
    let length = second & 0x7f;
    let from = at + 6;
    if (length === 126) {
      if (end - at < 8) break;
      length = (chunk[at + 2]! << 8) | chunk[at + 3]!;
      from = at + 8;
    } else if (length === 127) {
      // 64-bit lengths are past any limit the engine sets.
      break;
    }
    const to = from + length;
    if (to > end || (maxPayload > 0 && length > maxPayload)) break;
    unmaskPayload(chunk, from, to);
    const payload = chunk.subarray(from, to);
    if (!isUtf8(payload)) {
      // As it came, for the Receiver to refuse with its own close code.
      unmaskPayload(chunk, from, to);
      break;
    }
    at = to;
    listener.call(ws, payload, false);
    // What the listener did may have ended the Receiver (a close, an error).
    if (state.ending || state.destroyed || state.errored) return end;
  }
  return at;
}

/**
 * The `data` listener of a TCP socket whose websocket's one `message`
 * listener is `listener`; with none, every chunk goes to the Receiver.
 */
function onDataFor(listener: MessageListener | undefined): (this: Socket, chunk: Buffer) => void {
  return function onData(this: Socket, chunk: Buffer): void {
    const ws = (this as unknown as Record<symbol, WebSocketInternals | undefined>)[carried!];
    const receiver = ws?._receiver;
    const state = receiver?._writableState;
    // The Receiver ends itself on a close frame and is destroyed on an error.
    if (!receiver || !state || state.ending || state.destroyed || state.errored) return;
    if (state.length !== 0 || state.writing || state.corked !== 0) {
      if (!receiver.write(chunk)) this.pause();
      return;
    }
    if (listener !== undefined && receiver._state === GET_INFO && receiver._bufferedBytes === 0 && receiver._fragmented === 0) {
      const read = readTextFrames(ws as unknown as WebSocket, receiver, state, chunk, listener);
      if (read === chunk.length) return;
      if (read > 0) chunk = chunk.subarray(read);
    }
    feeding = receiver;
    try {
      receiver._write!(chunk, undefined, fed);
    } finally {
      feeding = undefined;
    }
  };
}

/** One `data` listener per `message` listener (the direct engine has one for every socket). */
const dataListeners = new Map<MessageListener | undefined, (this: Socket, chunk: Buffer) => void>();

/**
 * Feeds `ws`'s Receiver as described above, text frames going straight to
 * `listener`, which must be `ws`'s one `message` listener (and stay so);
 * false (ws's own path kept) when ws is not as expected. Whether text
 * frames are read here is `readsTextFrames(ws)`.
 */
export function feedReceiver(ws: WebSocket, listener: MessageListener): boolean {
  const { _socket: tcp, _receiver: receiver } = ws as unknown as WebSocketInternals;
  if (!tcp || !receiver || typeof receiver._write !== 'function' || !receiver._writableState) return false;
  if (receiver._allowSynchronousEvents !== true || ws.extensions !== '') return false;
  // Text frames are read here only where ws is as expected; else all goes to the Receiver.
  const parser = [receiver._state, receiver._bufferedBytes, receiver._fragmented, receiver._maxPayload];
  const messageListeners = ws.listeners('message');
  const reader = parser.every((field) => typeof field === 'number') && messageListeners.length === 1 && messageListeners[0] === listener ? listener : undefined;
  carried ??= Object.getOwnPropertySymbols(tcp).find((s) => s.description === 'websocket');
  if (carried === undefined || (tcp as unknown as Record<symbol, unknown>)[carried] !== ws) return false;
  const listeners = tcp.listeners('data');
  if (listeners.length !== 1 || listeners[0]!.name !== 'socketOnData') return false;
  tcp.removeListener('data', listeners[0] as (chunk: Buffer) => void);
  let onData = dataListeners.get(reader);
  if (onData === undefined) dataListeners.set(reader, (onData = onDataFor(reader)));
  tcp.on('data', onData);
  return true;
}

/** Whether text frames of `ws`, fed by `feedReceiver`, are read here rather than by its Receiver (for tests). */
export function readsTextFrames(ws: WebSocket): boolean {
  const tcp = (ws as unknown as WebSocketInternals)._socket;
  const onData = tcp?.listeners('data').find((listener) => listener.name === 'onData');
  return onData !== undefined && onData !== dataListeners.get(undefined);
}
