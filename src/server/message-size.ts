/**
 * Size of a signaling message as it crossed the wire, give or take JSON
 * punctuation: strings by UTF-8 bytes, binary by byte length, containers by
 * their contents. Stops counting as soon as the limit is passed, so a huge
 * message costs no more to refuse than a small one.
 * @module
 */

/** Nesting deeper than this is refused as too large. */
const MAX_DEPTH = 32;

/** Returns true when `value` fits in `limit` bytes. */
export function fitsIn(value: unknown, limit: number): boolean {
  return measure(value, limit, 0) <= limit;
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
