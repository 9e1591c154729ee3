/**
 * The demo in real Chromium. Run by demo.test.ts inside a private network
 * namespace it creates (Chromium gathers no ICE candidates on 127.0.0.1):
 * the server and signaling stay on 127.0.0.1 there, WebRTC uses the
 * namespace's 198.51.100.1, and no packet leaves it. Not a *.test.ts file:
 * outside such a namespace it refuses to run.
 * @module
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import type { RunningServer } from '../../src/server/server.js';
import { startTestServer } from '../support/util.js';

export const CHROMIUM = process.env['CHROMIUM_PATH'] ?? '/usr/bin/chromium';
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  // Real addresses in candidates instead of mDNS names, which nothing in the namespace resolves.
  '--disable-features=WebRtcHideLocalIpsWithMdns',
];
const OUTPUT = new URL('../../test-output/', import.meta.url);

if (process.env['SIGSERVE_NETNS'] !== '1') {
  throw new Error('demo-scenario.ts runs inside the network namespace that test/browser/demo.test.ts creates; run that file instead');
}

const shot = async (page: Page, name: string): Promise<void> => {
  await page.screenshot({ path: new URL(name, OUTPUT).pathname, fullPage: true });
};

/** Text of every chat line on a page. */
const chatLines = (page: Page): Promise<string[]> => page.locator('#messages li:not(.notice)').allTextContents();

describe('demo web app in Chromium', () => {
  let server: RunningServer;
  let browser: Browser;
  const contexts: BrowserContext[] = [];
  const context = async (options: Parameters<Browser['newContext']>[0] = {}): Promise<Page> => {
    const made = await browser.newContext({ viewport: { width: 1000, height: 900 }, ...options });
    contexts.push(made);
    const page = await made.newPage();
    page.setDefaultTimeout(30_000);
    page.on('pageerror', (error) => console.error(`page error: ${error.message}`));
    return page;
  };
  const name = async (page: Page, who: string): Promise<void> => {
    await page.evaluate((n) => localStorage.setItem('sigserve-demo-name', n), who);
  };

  before(async () => {
    mkdirSync(OUTPUT, { recursive: true });
    server = await startTestServer();
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, timeout: 60_000 });
  });
  after(async () => {
    for (const c of contexts) await c.close().catch(() => undefined);
    await browser?.close();
    await server?.close();
  });

  let link = '';
  let alice: Page;
  let bob: Page;
  let carol: Page;

  it('A shares a link with a QR code and a countdown', async () => {
    alice = await context();
    await alice.goto(server.url);
    await alice.locator('#your-name').fill('Alice');
    await alice.locator('#lifetime').fill('10');
    await alice.locator('#lifetime-unit').selectOption({ label: 'minutes' });
    await shot(alice, 'demo-start.png');
    await alice.locator('#create').click();
    await alice.locator('#link-panel').waitFor({ state: 'visible' });
    link = await alice.locator('#link').inputValue();
    assert.match(link, new RegExp(`^${server.url}/j/[A-Za-z0-9_-]{20,}#exp=\\d+$`));
    assert.ok((await alice.locator('#qr path').getAttribute('d'))!.length > 100, 'the QR code is drawn');
    assert.match((await alice.locator('#countdown').textContent())!, /^(10:00|9:5\d)$/);
    await alice.waitForFunction(() => /^9:5\d$/.test(document.getElementById('countdown')!.textContent ?? ''), undefined, { timeout: 5000 });
  });

  it('B and C open the link and connect directly to A over WebRTC', async () => {
    bob = await context();
    carol = await context({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
    for (const [page, who] of [
      [bob, 'Bob'],
      [carol, 'Carol'],
    ] as const) {
      await page.goto(server.url);
      await name(page, who);
      await page.goto(link);
    }
    for (const page of [bob, carol]) {
      await page.locator('#st-peer', { hasText: 'connected' }).waitFor();
      await page.locator('#chat-input:enabled').waitFor();
      assert.equal(await page.locator('#join-status').textContent(), 'Connected directly to the sharer.');
    }
    await alice.locator('#members li', { hasText: 'Bob' }).locator('.badge', { hasText: 'connected' }).waitFor();
    await alice.locator('#members li', { hasText: 'Carol' }).locator('.badge', { hasText: 'connected' }).waitFor();
    await carol.locator('#members li', { hasText: 'Bob' }).waitFor();
  });

  it("relays B's chat message to A and C, and C's to A and B", async () => {
    await bob.locator('#chat-input').fill('hello from Bob');
    await bob.locator('#chat-send').click();
    for (const page of [alice, carol]) await page.locator('#messages li', { hasText: 'Bob: hello from Bob' }).waitFor();
    await carol.locator('#chat-input').fill('hi all, Carol here');
    await carol.locator('#chat-input').press('Enter');
    for (const page of [alice, bob]) await page.locator('#messages li', { hasText: 'Carol: hi all, Carol here' }).waitFor();
    await alice.locator('#chat-input').fill('welcome, both');
    await alice.locator('#chat-send').click();
    for (const page of [bob, carol]) await page.locator('#messages li', { hasText: 'Alice: welcome, both' }).waitFor();
    assert.deepEqual(await chatLines(carol), ['Bob: hello from Bob', 'Carol: hi all, Carol here', 'Alice: welcome, both']);
  });

  it('sends a small file from B to A and C over the data channel, with a progress bar', async () => {
    const content = Buffer.alloc(200 * 1024);
    for (let i = 0; i < content.length; i++) content[i] = (i * 7 + (i >> 9)) & 0xff;
    const digest = createHash('sha256').update(content).digest('hex');
    await bob.locator('#file-input').setInputFiles({ name: 'notes.bin', mimeType: 'application/octet-stream', buffer: content });
    await bob.locator('#file-send').click();
    await bob.locator('#transfers li', { hasText: 'Sent notes.bin' }).waitFor();
    for (const page of [alice, carol]) {
      const item = page.locator('#transfers li', { hasText: 'notes.bin' });
      await item.locator('a.download').waitFor();
      const progress = await item.locator('progress').evaluate((p: HTMLProgressElement) => [p.value, p.max]);
      assert.deepEqual(progress, [content.length, content.length]);
      const [download] = await Promise.all([page.waitForEvent('download'), item.locator('a.download').click()]);
      assert.equal(download.suggestedFilename(), 'notes.bin');
      const saved = await readFile(await download.path());
      assert.equal(createHash('sha256').update(saved).digest('hex'), digest);
    }
    await shot(alice, 'demo-sharer.png');
    await shot(bob, 'demo-joiner.png');
    await shot(carol, 'demo-joiner-phone.png');
  });

  it('shows live counts and rates on /status', async () => {
    const status = await context();
    await status.goto(`${server.url}/status?interval=0.5`);
    await status.locator('#summary[data-state="ok"]').waitFor();
    // Alice holds her signaling connection and share; Bob and Carol closed theirs once connected.
    await status.waitForFunction(() => Number(document.querySelector('#chart-sockets output')?.textContent) >= 1);
    assert.ok(Number(await status.locator('#chart-shares output').textContent()) >= 1);
    // Someone joins while the page watches: launches and answers per second rise above zero.
    const dave = await context();
    await dave.goto(server.url);
    await name(dave, 'Dave');
    await dave.goto(link);
    await dave.locator('#st-peer', { hasText: 'connected' }).waitFor();
    for (const chart of ['launches', 'answers']) {
      await status.waitForFunction((id) => /^max [1-9]/.test(document.querySelector(`#chart-${id} .scale`)?.textContent ?? ''), chart);
    }
    await status.waitForFunction(() => /^max \d/.test(document.querySelector('#chart-latency .scale')?.textContent ?? ''));
    await alice.locator('#members li', { hasText: 'Dave' }).waitFor();
    await status.waitForTimeout(1500);
    await shot(status, 'status.png');
    await status.setViewportSize({ width: 390, height: 844 });
    await shot(status, 'status-phone.png');
  });

  it('shows an error for an expired link, and for a link nobody shares', async () => {
    const sharer = await context();
    await sharer.goto(server.url);
    await sharer.locator('#lifetime').fill('2');
    await sharer.locator('#lifetime-unit').selectOption({ label: 'seconds' });
    await sharer.locator('#create').click();
    await sharer.locator('#link-panel').waitFor({ state: 'visible' });
    const shortLink = await sharer.locator('#link').inputValue();
    await sharer.locator('#countdown-label', { hasText: 'expired' }).waitFor({ timeout: 10_000 });
    const late = await context();
    await late.goto(shortLink);
    const error = late.locator('#error');
    await error.waitFor({ state: 'visible' });
    assert.match((await error.textContent())!, /This link has expired/);
    await shot(late, 'demo-expired.png');

    const stray = await context();
    await stray.goto(`${server.url}/j/nobody-shares-this-name`);
    await stray.locator('#error').waitFor({ state: 'visible' });
    assert.match((await stray.locator('#error').textContent())!, /Nobody is sharing this link right now/);
  });
});
