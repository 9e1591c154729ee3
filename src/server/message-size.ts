/**
 * Size of a signaling message as it crossed the wire, give or take JSON
 * punctuation: strings by UTF-8 bytes, binary by byte length, containers by
 * their contents. Stops counting as soon as the limit is passed, so a huge
 * message costs no more to refuse than a small one.
 * @module
 */
import { RawJson } from '../core/raw-json.js';

/** Nesting deeper than this is refused as too large. */
const MAX_DEPTH = 32;

/** Returns true when `value` fits in `limit` bytes. */
function fitsIn(value: unknown, limit: number): boolean {
  return measure(value, limit, 0) <= limit;
}

/**
 * `fitsIn` for a relayed message, which may be a RawJson: one whose text is
 * a string literal short enough is known to fit without its value (which
 * it may not have parsed): the string holds at most as many UTF-16 units
 * as the literal between its quotes, each at most 3 UTF-8 bytes.
 */
export function messageFitsIn(message: unknown, limit: number): boolean {
  if (message instanceof RawJson) {
    const text = message.text;
    if (text.charCodeAt(0) === 34 /* '"' */ && (text.length - 2) * 3 <= limit) return true;
    return fitsIn(message.value, limit);
  }
  return fitsIn(message, limit);
}

function measure(value: unknown, budget: number, depth: number): number {
  if (typeof value === 'string') {
    // UTF-8 takes at most 3 bytes per UTF-16 unit: skip the exact count when it cannot matter.
    return value.length * 3 <= budget ? value.length : Buffer.byteLength(value);
  }
  if (value === null || typeof value !== 'object') return 8;
  if (ArrayBuffer.isView(value) || value instanceof ArrayBuffer) return value.byteLength;
  if (depth >= MAX_DEPTH) return Infinity;
  let total = 2;
  if (Array.isArray(value)) {
    for (const item of value) {
      total += 1 + measure(item, budget - total, depth + 1);
      if (total > budget) return total;
    }
    return total;
  }
  for (const key in value) {
    if (!Object.hasOwn(value, key)) continue;
    total += 2 + key.length + measure((value as Record<string, unknown>)[key], budget - total, depth + 1);
    if (total > budget) return total;
  }
  return total;
}
