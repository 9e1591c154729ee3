/**
 * How much the server holds for a client that is not reading: packets
 * queued in engine.io's write buffer (they pile up there while the
 * transport waits for the previous write, or for a long-polling client to
 * poll) plus, on a websocket, what ws has handed to the TCP socket but the
 * kernel has not taken. A client that does not read cannot make it grow past
 * the cap: the endpoint disconnects it first.
 *
 * engine.io keeps `writeBuffer` private in its types; test/abuse-limits.test.ts
 * fails if a new engine.io version stops filling it.
 * @module
 */

interface Packet {
  data?: unknown;
}

interface EngineConnection {
  transport?: { socket?: { bufferedAmount?: unknown } };
}

/** Bytes (string length for text) held for one engine.io connection. */
export function bufferedBytes(conn: object): number {
  const queue = (conn as { writeBuffer?: Packet[] }).writeBuffer;
  let total = 0;
  if (queue) {
    for (const packet of queue) {
      const data = packet.data;
      if (typeof data === 'string') total += data.length;
      else if (data instanceof ArrayBuffer || ArrayBuffer.isView(data)) total += data.byteLength;
    }
  }
  const inFlight = (conn as EngineConnection).transport?.socket?.bufferedAmount;
  if (typeof inFlight === 'number') total += inFlight;
  return total;
}

interface Closable {
  close(discard?: boolean): void;
  transport?: { socket?: { terminate?: unknown } };
}

/**
 * Drops a slow consumer's connection at once, with everything queued for
 * it. A polite close would wait for the client to read its buffer (which
 * it does not), for a websocket close frame (ws waits 30 s) or for a last
 * poll: until then the server would keep holding the buffer.
 */
export function cutOff(conn: object): void {
  const ws = (conn as Closable).transport?.socket;
  if (ws && typeof ws.terminate === 'function') (ws.terminate as () => void).call(ws);
  (conn as Closable).close(true);
}
