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
 * The hook leans on ws internals: the TCP socket's `socketOnData` listener,
 * the symbol that links that socket to its WebSocket, the Receiver's
 * `_write` and `_writableState`. When one of them is not as expected,
 * `feedReceiver` leaves ws's own path in place (test/direct-websocket.test.ts
 * notices).
 * @module
 */
import type { Socket } from 'node:net';
import type { WebSocket } from 'ws';

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

function onData(this: Socket, chunk: Buffer): void {
  const ws = (this as unknown as Record<symbol, WebSocketInternals | undefined>)[carried!];
  const receiver = ws?._receiver;
  const state = receiver?._writableState;
  // The Receiver ends itself on a close frame and is destroyed on an error.
  if (!receiver || !state || state.ending || state.destroyed || state.errored) return;
  if (state.length !== 0 || state.writing || state.corked !== 0) {
    if (!receiver.write(chunk)) this.pause();
    return;
  }
  feeding = receiver;
  try {
    receiver._write!(chunk, undefined, fed);
  } finally {
    feeding = undefined;
  }
}

/** Feeds `ws`'s Receiver as described above; false (ws's own path kept) when ws is not as expected. */
export function feedReceiver(ws: WebSocket): boolean {
  const { _socket: tcp, _receiver: receiver } = ws as unknown as WebSocketInternals;
  if (!tcp || !receiver || typeof receiver._write !== 'function' || !receiver._writableState) return false;
  if (receiver._allowSynchronousEvents !== true || ws.extensions !== '') return false;
  carried ??= Object.getOwnPropertySymbols(tcp).find((s) => s.description === 'websocket');
  if (carried === undefined || (tcp as unknown as Record<symbol, unknown>)[carried] !== ws) return false;
  const listeners = tcp.listeners('data');
  if (listeners.length !== 1 || listeners[0]!.name !== 'socketOnData') return false;
  tcp.removeListener('data', listeners[0] as (chunk: Buffer) => void);
  tcp.on('data', onData);
  return true;
}
