import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { StringTable } from '../src/core/string-table.js';
import { rng } from './support/rng.js';

function assertSame(table: StringTable<number>, model: Map<string, number>, keys: readonly string[]): void {
  assert.equal(table.size, model.size);
  for (const key of keys) assert.equal(table.get(key), model.get(key), `key ${JSON.stringify(key)}`);
}

describe('StringTable', () => {
  it('sets, replaces, finds and deletes like a Map', () => {
    const table = new StringTable<number>();
    table.set('a', 1);
    table.set('b', 2);
    table.set('a', 3);
    assert.equal(table.size, 2);
    assert.equal(table.get('a'), 3);
    assert.equal(table.get('b'), 2);
    assert.equal(table.get('c'), undefined);
    assert.equal(table.delete('c'), false);
    assert.equal(table.delete('a'), true);
    assert.equal(table.delete('a'), false);
    assert.equal(table.get('a'), undefined);
    assert.equal(table.size, 1);
    // Keys are strings as they are: no coercion, '' is a key like any other.
    table.set('', 4);
    assert.equal(table.get(''), 4);
    assert.equal(table.get('b'), 2);
  });

  it('agrees with a Map through long random churn, growing and shrinking', () => {
    // Few distinct keys in a small table: long probe runs that wrap around
    // the end, so deletes must move entries back across the wrap.
    for (const [seed, distinct, steps] of [
      [1, 12, 20_000],
      [2, 300, 50_000],
      [3, 5000, 50_000],
    ] as const) {
      const next = rng(seed);
      const keys = Array.from({ length: distinct }, (_, i) => `k${i}-${(i * 7919) % 97}`);
      const table = new StringTable<number>();
      const model = new Map<string, number>();
      for (let step = 0; step < steps; step++) {
        const key = keys[Math.floor(next() * distinct)]!;
        // Phases that mostly add, then mostly delete, so the table grows and shrinks.
        const adding = Math.floor(step / 5000) % 2 === 0 ? 0.7 : 0.3;
        if (next() < adding) {
          table.set(key, step);
          model.set(key, step);
        } else {
          assert.equal(table.delete(key), model.delete(key));
        }
        if (step % 997 === 0) assertSame(table, model, keys);
      }
      assertSame(table, model, keys);
      for (const key of keys) assert.equal(table.delete(key), model.delete(key));
      assert.equal(table.size, 0);
    }
  });

  it('keeps a churning table at one size: the route pattern (add one, drop the oldest)', () => {
    const table = new StringTable<number>();
    for (let i = 0; i < 64; i++) table.set(`uid-${i}`, i);
    for (let i = 64; i < 100_000; i++) {
      table.set(`uid-${i}`, i);
      assert.equal(table.delete(`uid-${i - 64}`), true);
    }
    assert.equal(table.size, 64);
    for (let i = 100_000 - 64; i < 100_000; i++) assert.equal(table.get(`uid-${i}`), i);
    assert.equal(table.get(`uid-${100_000 - 65}`), undefined);
  });
});
