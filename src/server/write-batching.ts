/**
 * One write per burst: when engine.io flushes several packets to a
 * websocket at once (a sharer's answer and its trickled ICE candidates
 * arrive together and leave together), the TCP socket is corked for the
 * rest of the tick, so they leave in one writev instead of one syscall per
 * packet. A single packet is written as before.
 *
 * ws keeps its TCP socket in `_socket` (engine.io itself reaches into ws's
 * `_sender` the same way); without it nothing is corked.
 * @module
 */

interface Corkable {
  cork(): void;
  uncork(): void;
  writableCorked?: number;
}

interface EngineSocketLike {
  transport?: { name?: string; socket?: { _socket?: Partial<Corkable> } };
}

interface EngineLike {
  on(event: 'flush', listener: (socket: EngineSocketLike, buffer: readonly unknown[]) => void): unknown;
}

const uncork = (tcp: Corkable): void => tcp.uncork();

/** Corks a websocket's TCP socket for the rest of the tick when engine.io flushes more than one packet to it. */
export function batchWrites(engine: EngineLike): void {
  engine.on('flush', (socket, buffer) => {
    if (buffer.length < 2 || socket.transport?.name !== 'websocket') return;
    const tcp = socket.transport.socket?._socket;
    if (typeof tcp?.cork !== 'function' || typeof tcp.uncork !== 'function') return;
    tcp.cork();
    process.nextTick(uncork, tcp as Corkable);
  });
}
