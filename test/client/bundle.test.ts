/**
 * The browser bundle of the client: self-contained, complete, and within the
 * size budget stated in the README ("Client library" section).
 * @module
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

const root = new URL('../../', import.meta.url);
const CLIENT_BUNDLE = new URL('dist/browser/sigserve-client.js', root);
const DEMO_SCRIPT = new URL('dist/demo/app.js', root);

/** The budgets the README states, gzip -9, in bytes. */
const CLIENT_BUDGET = 24 * 1024;
const DEMO_BUDGET = 12 * 1024;

const gzipped = (file: URL): number => gzipSync(readFileSync(file), { level: 9 }).byteLength;

describe('browser bundle', () => {
  before(() => {
    // npm test builds first; a lone run of this file builds what is missing.
    if (existsSync(CLIENT_BUNDLE) && existsSync(DEMO_SCRIPT)) return;
    const built = spawnSync(process.execPath, ['scripts/build-browser.mjs'], { cwd: fileURLToPath(root), encoding: 'utf8' });
    assert.equal(built.status, 0, built.stderr);
  });

  it(`keeps the client within ${CLIENT_BUDGET / 1024} KiB gzipped`, () => {
    const size = gzipped(CLIENT_BUNDLE);
    assert.ok(size <= CLIENT_BUDGET, `dist/browser/sigserve-client.js is ${size} bytes gzipped, over the budget of ${CLIENT_BUDGET}`);
    // Not trivially small either: socket.io-client is inside.
    assert.ok(size > 8 * 1024, `suspiciously small bundle: ${size} bytes`);
  });

  it(`keeps the demo page's own script within ${DEMO_BUDGET / 1024} KiB gzipped`, () => {
    const size = gzipped(DEMO_SCRIPT);
    assert.ok(size <= DEMO_BUDGET, `dist/demo/app.js is ${size} bytes gzipped, over the budget of ${DEMO_BUDGET}`);
  });

  it('is one self-contained ES module exporting the client API', async () => {
    const text = readFileSync(CLIENT_BUNDLE, 'utf8');
    assert.doesNotMatch(text, /\bfrom\s*"(?!\.)[^"]+"|\brequire\(/, 'imports nothing at run time');
    assert.doesNotMatch(text, /"node:/, 'no Node built-ins');
    const client = (await import(CLIENT_BUNDLE.href)) as Record<string, unknown>;
    for (const name of ['SignalingClient', 'SignalingClientError', 'share', 'join', 'shareMembership', 'joinMembership', 'WebRtcMembership', 'ERROR_CODES']) {
      assert.ok(client[name], `exports ${name}`);
    }
  });

  it('is what the demo page loads', () => {
    assert.match(readFileSync(DEMO_SCRIPT, 'utf8'), /from"\/assets\/sigserve-client\.js"/);
  });
});
