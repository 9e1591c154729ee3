/**
 * The framing of a node link (node-links.ts): each frame is its length in
 * bytes (32 bits, big-endian) followed by that many bytes, the same bytes a
 * node would otherwise publish to the target's Redis channel. TCP hands
 * them over in arbitrary chunks; LinkFrameReader cuts them back into frames
 * without copying a frame that arrived within one chunk.
 * @module
 */

/** One frame as it goes on the wire. */
export function encodeLinkFrame(frame: string | Buffer): Buffer {
  if (typeof frame !== 'string') {
    const out = Buffer.allocUnsafe(4 + frame.length);
    out.writeUInt32BE(frame.length, 0);
    frame.copy(out, 4);
    return out;
  }
  const length = Buffer.byteLength(frame);
  const out = Buffer.allocUnsafe(4 + length);
  out.writeUInt32BE(length, 0);
  out.write(frame, 4);
  return out;
}

export class LinkFrameReader {
  /** Longest frame accepted, in bytes: a longer one means the stream cannot be trusted. */
  limit: number;
  /** Chunks of an incomplete frame, and their bytes. */
  #parts: Buffer[] = [];
  #bytes = 0;
  /** Bytes `#parts` must reach before the frame (or its length) is complete. */
  #need = 0;
  #stopped = false;

  constructor(limit: number) {
    this.limit = limit;
  }

  /** Frames after the current one are not handed on: call from `onFrame` when the stream is done with. */
  stop(): void {
    this.#stopped = true;
    this.#parts = [];
  }

  /**
   * Hands each complete frame to `onFrame` (a view into `chunk`, valid as
   * long as the caller keeps it). False when a frame is longer than
   * `limit`: nothing after it is read.
   */
  push(chunk: Buffer, onFrame: (frame: Buffer) => void): boolean {
    if (this.#stopped) return true;
    if (this.#parts.length > 0) {
      this.#parts.push(chunk);
      this.#bytes += chunk.length;
      if (this.#bytes < this.#need) return true;
      chunk = Buffer.concat(this.#parts, this.#bytes);
      this.#parts = [];
      this.#bytes = 0;
    }
    let at = 0;
    while (chunk.length - at >= 4) {
      const length = chunk.readUInt32BE(at);
      if (length > this.limit) return this.#broken();
      if (chunk.length - at - 4 < length) break;
      const frame = chunk.subarray(at + 4, at + 4 + length);
      at += 4 + length;
      onFrame(frame);
      if (this.#stopped) return true;
    }
    if (at < chunk.length) {
      const rest = chunk.subarray(at);
      this.#parts.push(rest);
      this.#bytes = rest.length;
      this.#need = rest.length >= 4 ? 4 + rest.readUInt32BE(0) : 4;
    }
    return true;
  }

  #broken(): false {
    this.stop();
    return false;
  }
}
