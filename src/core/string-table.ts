/**
 * A hash table from strings to values, for tables whose keys come and go
 * all the time: the in-memory registry's routes of a name, where every
 * join adds a uid and, past the route cap, another one goes. The core's
 * route book (route-book.ts) probes and hashes the same way.
 *
 * A Map never reuses the entry of a deleted key: once its entries are used
 * up it rehashes into a new backing store, a few KB for a table of 64
 * routes, every 64 joins. Under load such a store lives long enough to be
 * promoted to the old generation and then dies there. Measured at 50 pairs
 * (a sampling heap profile counting only what outlived the young
 * generation), the rehashed stores of the three route Maps were most of
 * what the server promoted, about 4 MB/s, and the mark-compacts they
 * brought (5-6 ms pauses, a few per second) set the tail of relay latency.
 *
 * This table probes linearly and deletes by moving the entries after the
 * deleted one back, so it leaves no tombstones and allocates only when it
 * grows (past 5/8 full) or shrinks (below 1/8). Keys are hashed with a
 * seed drawn per process: a client that picks uids cannot aim them at one
 * chain. In the route pattern (64 held, one added and the oldest dropped
 * per join) it also costs about half what a Map does (120 against 231 ns
 * per join over 1,000 tables).
 * @module
 */
import { randomInt } from 'node:crypto';

/** 30 bits, so that hashes are small integers (V8 keeps them unboxed in the slot array). */
const HASH_BITS = 0x3fff_ffff;
const SEED = randomInt(HASH_BITS);

/** A multiply-xorshift hash of the UTF-16 code units of `key`, seeded. */
function hashOf(key: string): number {
  return finish(mix(SEED ^ key.length, key));
}

/**
 * The same hash of the pair (a, b), without concatenating them. The length
 * of `b` goes in between, so ('au', '') and ('a', 'u') differ.
 */
export function hashPair(a: string, b: string): number {
  return finish(mix(mix(SEED ^ a.length, a) ^ Math.imul(b.length + 1, 0x9e37_79b1), b));
}

function mix(h: number, key: string): number {
  for (let i = 0; i < key.length; i++) {
    h = Math.imul(h ^ key.charCodeAt(i), 0x5bd1_e995);
    h ^= h >>> 15;
  }
  return h;
}

function finish(h: number): number {
  h = Math.imul(h ^ (h >>> 13), 0xc2b2_ae35);
  return (h ^ (h >>> 16)) & HASH_BITS;
}

// Each slot is three elements of one array (key, value, hash): one
// allocation per table, and a probe reads one cache line.
const KEY = 0;
const VALUE = 1;
const HASH = 2;
const STRIDE = 3;
const MIN_SLOTS = 8;

export class StringTable<V> {
  /** key | undefined, value, hash, for each of a power of two of slots. */
  #slots: unknown[];
  #mask: number;
  #size = 0;

  constructor() {
    this.#slots = emptySlots(MIN_SLOTS);
    this.#mask = MIN_SLOTS - 1;
  }

  get size(): number {
    return this.#size;
  }

  get(key: string): V | undefined {
    const at = this.#slotOf(key, hashOf(key)) * STRIDE;
    return this.#slots[at + KEY] === undefined ? undefined : (this.#slots[at + VALUE] as V);
  }

  set(key: string, value: V): void {
    const hash = hashOf(key);
    let at = this.#slotOf(key, hash) * STRIDE;
    if (this.#slots[at + KEY] === undefined) {
      // At most 5/8 full, so probes stay short, and a table at the route cap
      // (64, and 65 for a moment as a join adds one before the oldest goes)
      // keeps 128 slots.
      if ((this.#size + 1) * 8 > (this.#mask + 1) * 5) {
        this.#resize((this.#mask + 1) * 2);
        at = this.#slotOf(key, hash) * STRIDE;
      }
      this.#slots[at + KEY] = key;
      this.#slots[at + HASH] = hash;
      this.#size++;
    }
    this.#slots[at + VALUE] = value;
  }

  delete(key: string): boolean {
    const slots = this.#slots;
    const hole = this.#slotOf(key, hashOf(key));
    if (slots[hole * STRIDE + KEY] === undefined) return false;
    const mask = this.#mask;
    removeSlot(slots, STRIDE, HASH, mask, hole);
    this.#size--;
    // A table that held many (a popular sharer's routes) gives memory back once it holds few.
    const capacity = mask + 1;
    if (capacity > MIN_SLOTS && this.#size * 8 < capacity) this.#resize(capacity / 2);
    return true;
  }

  /** The slot holding `key`, or else the empty slot where it would go. */
  #slotOf(key: string, hash: number): number {
    const slots = this.#slots;
    for (let i = hash & this.#mask; ; i = (i + 1) & this.#mask) {
      const k = slots[i * STRIDE + KEY];
      if (k === undefined || (slots[i * STRIDE + HASH] === hash && k === key)) return i;
    }
  }

  #resize(capacity: number): void {
    const old = this.#slots;
    this.#slots = emptySlots(capacity);
    this.#mask = capacity - 1;
    this.#size = 0;
    for (let at = 0; at < old.length; at += STRIDE) {
      const key = old[at + KEY];
      if (key !== undefined) this.set(key as string, old[at + VALUE] as V);
    }
  }
}

/**
 * Empties slot `hole` of a linear-probing table of `stride` elements per
 * slot (the first undefined when the slot is empty, the hash at `hashAt`),
 * moving back every later entry of the run that may sit in it (one whose
 * home slot is not cyclically within (hole, j]), so no tombstone is left.
 * Shared with the route book (route-book.ts).
 */
export function removeSlot(slots: unknown[], stride: number, hashAt: number, mask: number, hole: number): void {
  for (let j = (hole + 1) & mask; slots[j * stride] !== undefined; j = (j + 1) & mask) {
    const home = (slots[j * stride + hashAt] as number) & mask;
    if (hole <= j ? home <= hole || home > j : home <= hole && home > j) {
      for (let k = 0; k < stride; k++) slots[hole * stride + k] = slots[j * stride + k];
      hole = j;
    }
  }
  for (let k = 0; k < stride; k++) slots[hole * stride + k] = k === hashAt ? 0 : undefined;
}

function emptySlots(capacity: number): unknown[] {
  const slots: unknown[] = [];
  for (let i = 0; i < capacity; i++) slots.push(undefined, undefined, 0);
  return slots;
}
