/**
 * Gives ws a word-at-a-time frame unmask where it would otherwise XOR one
 * byte at a time.
 *
 * Every frame a client sends is masked (RFC 6455 §5.3), so the server
 * XORs every byte it receives with a 4-byte key. ws does that with Node's
 * `http.websocketUnmask` where Node has it (22.x onwards) or with the
 * optional `bufferutil` addon; without either it falls back to a
 * byte-by-byte JS loop, which on Node 20 was the largest single JS frame
 * in a profile of the relay (9.4 % of the server's CPU at 50 pairs). XOR
 * on 32-bit words does the same work in about a quarter of the time
 * (0.4 against 1.7 µs for a 1.2 KB offer).
 *
 * `bufferutil` is not the answer here: the old socket.io 1.x clients the
 * compatibility tests run bundle a ws 1.x that loads it too and expects
 * its old API. So this module replaces ws's fallback, and only the
 * fallback: where Node or bufferutil provides the unmask it leaves ws
 * alone. ws's receiver takes its own reference to `unmask` when it loads,
 * so this must run before any ws loads; import it first. Where a ws was
 * loaded already it changes nothing.
 * @module
 */
import { createRequire } from 'node:module';
import { endianness } from 'node:os';
import { dirname, join } from 'node:path';

type Unmask = (buffer: Buffer, mask: Buffer) => void;

/** Below this many bytes the setup of a word view costs more than it saves. */
const WORD_UNMASK_MIN = 64;
const LITTLE_ENDIAN = endianness() === 'LE';

/** The key of the range being unmasked, turned so that key[i & 3] applies to byte `from + i`. */
const key = new Uint8Array(4);

/** XORs buffer[from, to) in place with `key`, by words where that pays. */
function unmaskRange(buffer: Buffer, from: number, to: number): void {
  const length = to - from;
  if (length < WORD_UNMASK_MIN) {
    for (let i = 0; i < length; i++) buffer[from + i] = buffer[from + i]! ^ key[i & 3]!;
    return;
  }
  // A typed-array view must start on a multiple of its element size, so
  // the bytes before the first 4-byte boundary go singly; the key seen by
  // the aligned middle starts at key[head].
  const head = (4 - ((buffer.byteOffset + from) & 3)) & 3;
  for (let i = 0; i < head; i++) buffer[from + i] = buffer[from + i]! ^ key[i]!;
  const m0 = key[head & 3]!;
  const m1 = key[(head + 1) & 3]!;
  const m2 = key[(head + 2) & 3]!;
  const m3 = key[(head + 3) & 3]!;
  const word = LITTLE_ENDIAN ? m0 | (m1 << 8) | (m2 << 16) | (m3 << 24) : (m0 << 24) | (m1 << 16) | (m2 << 8) | m3;
  const words = (length - head) >>> 2;
  const view = new Int32Array(buffer.buffer, buffer.byteOffset + from + head, words);
  for (let i = 0; i < words; i++) view[i] = view[i]! ^ word;
  for (let i = head + words * 4; i < length; i++) buffer[from + i] = buffer[from + i]! ^ key[i & 3]!;
}

/**
 * XORs `buffer` in place with the repeating 4-byte `mask`, as ws's own
 * `unmask` does: byte i with mask[i % 4].
 */
export function unmaskWords(buffer: Buffer, mask: Buffer): void {
  key[0] = mask[0]!;
  key[1] = mask[1]!;
  key[2] = mask[2]!;
  key[3] = mask[3]!;
  unmaskRange(buffer, 0, buffer.length);
}

/**
 * Unmasks the payload of a frame where it lies, buffer[from, to), with the
 * 4-byte key just before it (buffer[from - 4, from)), as a client frame
 * carries it; the key is left as it is. Running it twice restores the payload.
 */
export function unmaskPayload(buffer: Buffer, from: number, to: number): void {
  key[0] = buffer[from - 4]!;
  key[1] = buffer[from - 3]!;
  key[2] = buffer[from - 2]!;
  key[3] = buffer[from - 1]!;
  unmaskRange(buffer, from, to);
}

/**
 * Installs `unmaskWords` into the ws that this package resolves, or, with
 * `via`, the one resolved from inside that chain of packages (each looked
 * up from the one before), if that ws still uses its byte loop and has not
 * run its receiver. Returns whether it did.
 */
function installInto(...via: string[]): boolean {
  try {
    const load = via.reduce((from, name) => createRequire(from.resolve(name)), createRequire(import.meta.url));
    const wsRoot = dirname(load.resolve('ws/package.json'));
    // Node may enter a CommonJS module in the cache before running it (an
    // ES module's imports are all resolved first); only a receiver that
    // has run holds its unmask already.
    if (load.cache[join(wsRoot, 'lib', 'receiver.js')]?.loaded) return false;
    const bufferUtil = load(join(wsRoot, 'lib', 'buffer-util.js')) as { unmask?: Unmask };
    // `_unmask` is the name of ws's byte loop; anything else is Node's or
    // bufferutil's native unmask, which is faster still.
    if (typeof bufferUtil.unmask !== 'function' || bufferUtil.unmask.name !== '_unmask') return false;
    bufferUtil.unmask = unmaskWords;
    return true;
  } catch {
    // Not installed where expected, or a ws laid out differently from
    // ws 8: leave it as it is.
    return false;
  }
}

/**
 * Which ws copies now unmask by words: the one the direct engine uses,
 * and the one socket.io's engine.io uses (npm may nest its own version).
 */
export const wordUnmaskInstalled = {
  direct: installInto(),
  socketIo: installInto('socket.io', 'engine.io'),
};
