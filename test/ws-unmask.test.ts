/**
 * The word-at-a-time frame unmask: it gives the bytes ws's own byte loop
 * gives for any buffer, wherever the buffer starts in memory, and the
 * server's entry points install it into ws before ws loads (and not after).
 * @module
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { unmaskPayload, unmaskWords } from '../src/server/ws-unmask.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

/** ws's fallback, as the reference. */
function unmaskByBytes(buffer: Buffer, mask: Buffer): void {
  for (let i = 0; i < buffer.length; i++) buffer[i] = buffer[i]! ^ mask[i & 3]!;
}

/** A copy of `bytes` that starts `offset` bytes into a larger allocation, as a frame inside a socket read does. */
function placedAt(bytes: Uint8Array, offset: number): Buffer {
  const backing = Buffer.alloc(offset + bytes.length + 5, 0xaa);
  const view = backing.subarray(offset, offset + bytes.length);
  view.set(bytes);
  return view;
}

/** Runs an ES module in a fresh node and returns what it printed, as JSON. */
function runModule(source: string): unknown {
  const out = execFileSync(process.execPath, ['--input-type=module', '-e', source], { cwd: ROOT, encoding: 'utf8' });
  return JSON.parse(out);
}

describe('ws frame unmask by words', () => {
  it('unmasks every length at every alignment exactly as the byte loop does, and touches nothing around it', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 3000 }),
        fc.nat(7),
        fc.uint8Array({ minLength: 4, maxLength: 4 }),
        fc.nat(7),
        (bytes, offset, maskBytes, maskOffset) => {
          const ours = placedAt(bytes, offset);
          const reference = Buffer.from(bytes);
          const mask = placedAt(maskBytes, maskOffset);
          unmaskWords(ours, mask);
          unmaskByBytes(reference, mask);
          assert.deepEqual(ours, reference);
          const backing = Buffer.from(ours.buffer, ours.byteOffset - offset, offset + bytes.length + 5);
          assert.ok(backing.subarray(0, offset).every((b) => b === 0xaa), 'bytes before the buffer changed');
          assert.ok(backing.subarray(offset + bytes.length).every((b) => b === 0xaa), 'bytes after the buffer changed');
          assert.deepEqual(mask, Buffer.from(maskBytes), 'the mask changed');
        },
      ),
      { numRuns: 3000 },
    );
  });

  it('unmasks a payload where it lies with the key before it, as the byte loop does, and a second pass restores it', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 40 }),
        fc.uint8Array({ minLength: 4, maxLength: 4 }),
        fc.uint8Array({ maxLength: 3000 }),
        fc.uint8Array({ maxLength: 40 }),
        fc.nat(7),
        (before, maskBytes, payload, after, offset) => {
          // A read holding other bytes, then a frame's key and payload, then more.
          const read = placedAt(Buffer.concat([before, maskBytes, payload, after]), offset);
          const from = before.length + 4;
          const to = from + payload.length;
          const reference = Buffer.from(payload);
          unmaskByBytes(reference, Buffer.from(maskBytes));
          unmaskPayload(read, from, to);
          assert.deepEqual(read.subarray(from, to), reference);
          assert.deepEqual(read.subarray(0, from), Buffer.concat([before, maskBytes]), 'the bytes before the payload changed');
          assert.deepEqual(read.subarray(to), Buffer.from(after), 'the bytes after the payload changed');
          unmaskPayload(read, from, to);
          assert.deepEqual(read.subarray(from, to), Buffer.from(payload));
        },
      ),
      { numRuns: 3000 },
    );
  });

  it('is what both of the server’s ws copies unmask with once the server package loads', () => {
    const seen = runModule(`
      import { createRequire } from 'node:module';
      await import('./dist/index.js');
      const own = createRequire(process.cwd() + '/package.json');
      const engineIo = createRequire(createRequire(own.resolve('socket.io')).resolve('engine.io'));
      const unmaskOf = (r) => r(r.resolve('ws/package.json').replace(/package\\.json$/, 'lib/buffer-util.js')).unmask.name;
      console.log(JSON.stringify({ direct: unmaskOf(own), socketIo: unmaskOf(engineIo) }));
    `);
    assert.deepEqual(seen, { direct: 'unmaskWords', socketIo: 'unmaskWords' });
  });

  it('leaves a ws that loaded first alone, since its receiver already holds the byte loop', () => {
    const seen = runModule(`
      await import('ws');
      const { wordUnmaskInstalled } = await import('./dist/server/ws-unmask.js');
      console.log(JSON.stringify(wordUnmaskInstalled));
    `);
    assert.deepEqual(seen, { direct: false, socketIo: true });
  });
});
