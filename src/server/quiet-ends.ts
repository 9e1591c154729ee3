/**
 * Spares the error Node builds, and nobody receives, each time ws ends a
 * stream that has already finished.
 *
 * When a client closes its websocket, the close handshake ends the
 * server's side of the TCP socket and ws's Receiver first. The client's
 * FIN and the socket's close then arrive, and ws's listeners for them end
 * both once more: `socketOnEnd` ends the Receiver and the TCP socket,
 * `socketOnClose` the Receiver. `Writable.end()` on a finished stream
 * answers with a new ERR_STREAM_ALREADY_FINISHED (ERR_STREAM_DESTROYED if
 * destroyed), message formatted and stack trace captured, which it hands
 * only to a callback. ws passes none, so the error is dropped: three per
 * closed connection, about 6 µs each, some 7 % of the server's CPU per
 * connection in a profile of connections opened and closed
 * (bench/RESULTS.md, phase 14).
 *
 * The guard returns early exactly where `end()` would have made that error
 * and done nothing else: no arguments (so no chunk and no callback), the
 * stream ending or errored already, finished or destroyed, and not corked
 * (`end()` uncorks first). In every other case Node's own `end()` runs. It
 * is installed on ws's Receiver and on `net.Socket`, the two classes whose
 * finished streams ws ends again. Being on their prototypes, it applies to
 * every such stream in the process, also those of a program that embeds
 * the server: that is why it keeps to the one case where Node's `end()`
 * has no effect anyone can see (test/quiet-ends.test.ts compares the two
 * in each state a stream can be in).
 * @module
 */
import { Socket } from 'node:net';
import type { Writable } from 'node:stream';
import * as ws from 'ws';

/** The parts of a Writable's state `end()` reads before making its error. */
interface EndState {
  ending: boolean;
  errored: unknown;
  finished: boolean;
  destroyed: boolean;
  corked: number;
}

type End = Writable['end'];

function quietEnd(original: End): End {
  return function end(this: Writable, ...args: unknown[]) {
    const state = (this as unknown as { _writableState?: EndState })._writableState;
    if (args.length === 0 && state && (state.ending || state.errored != null) && (state.finished || state.destroyed) && state.corked === 0) return this;
    return (original as (...a: unknown[]) => Writable).apply(this, args);
  } as End;
}

const marked = Symbol.for('sigserve.quietEnd');

/**
 * Gives `prototype` an `end` of its own around the one it has (its own or
 * inherited), once: a second copy of this module leaves it as it is.
 */
function install(prototype: { end: End; [marked]?: true }): void {
  if (Object.hasOwn(prototype, marked)) return;
  prototype.end = quietEnd(prototype.end);
  prototype[marked] = true;
}

install(Socket.prototype as unknown as { end: End });
// Not in ws's type declarations; it inherits `end` from Writable.
const Receiver = (ws as unknown as { Receiver?: { prototype: { end: End } } }).Receiver;
if (Receiver) install(Receiver.prototype);
