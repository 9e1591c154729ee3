/**
 * The demo's HTTP side: which paths serve what, with which headers, and the
 * status page's parser against the server's real /metrics text.
 * @module
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { parseMetrics } from '../../demo/status.js';
import type { RunningServer } from '../../src/server/server.js';
import { connect, disconnectAll, request, startTestServer } from '../support/util.js';

describe('demo routes', () => {
  let server: RunningServer;
  before(async () => {
    server = await startTestServer();
  });
  after(async () => {
    disconnectAll();
    await server.close();
  });

  it('serves the demo at / and at every link path, with a strict CSP and no referrer', async () => {
    const home = await fetch(`${server.url}/`);
    assert.equal(home.status, 200);
    assert.match(home.headers.get('content-type')!, /^text\/html/);
    assert.match(home.headers.get('content-security-policy')!, /script-src 'self'/);
    assert.equal(home.headers.get('referrer-policy'), 'no-referrer');
    assert.equal(home.headers.get('x-content-type-options'), 'nosniff');
    const page = await home.text();
    assert.match(page, /<script type="module" src="\/assets\/app.js">/);
    const link = await fetch(`${server.url}/j/${encodeURIComponent('a name/with?odd=chars'.replace('/', '%2F'))}`);
    assert.equal(link.status, 200);
    assert.equal(await link.text(), page);
    assert.equal((await fetch(`${server.url}/j/a/b`)).status, 404);
    assert.equal((await fetch(`${server.url}/j/`)).status, 404);
  });

  it('serves the status page and the assets, and nothing else under /assets', async () => {
    const status = await fetch(`${server.url}/status`);
    assert.equal(status.status, 200);
    assert.match(await status.text(), /src="\/assets\/status.js"/);
    for (const [path, type] of [
      ['/assets/app.js', /^text\/javascript/],
      ['/assets/status.js', /^text\/javascript/],
      ['/assets/sigserve-client.js', /^text\/javascript/],
      ['/assets/style.css', /^text\/css/],
    ] as const) {
      const response = await fetch(`${server.url}${path}`);
      assert.equal(response.status, 200, path);
      assert.match(response.headers.get('content-type')!, type, path);
      assert.ok((await response.arrayBuffer()).byteLength > 100, path);
    }
    for (const path of ['/assets/', '/assets/../package.json', '/assets/%2e%2e/package.json', '/demo/index.html', '/assets/app.ts']) {
      assert.equal((await fetch(`${server.url}${path}`)).status, 404, path);
    }
  });

  it('answers HEAD without a body', async () => {
    const head = await fetch(`${server.url}/assets/sigserve-client.js`, { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.ok(Number(head.headers.get('content-length')) > 1000);
    assert.equal((await head.arrayBuffer()).byteLength, 0);
  });

  it("parses the server's /metrics as the status page does", async () => {
    const sharer = await connect(server.url);
    const joiner = await connect(server.url);
    await request(sharer, 'share', 'metrics-demo');
    await request(joiner, 'launch', 'metrics-demo', 'uid-m', 'offer');
    await request(sharer, 'answer', 'metrics-demo', 'uid-m', 'answer');
    await request(joiner, 'launch', 'nobody-here', 'uid-n', 'offer');
    const samples = parseMetrics(await (await fetch(`${server.url}/metrics`)).text());
    const value = (name: string, labels: Record<string, string> = {}): number | undefined =>
      samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value;
    assert.equal(value('sigserve_connected_sockets'), 2);
    assert.equal(value('sigserve_active_shares'), 1);
    assert.equal(value('sigserve_relayed_total', { kind: 'launch' }), 1);
    assert.equal(value('sigserve_relayed_total', { kind: 'answer' }), 1);
    assert.equal(value('sigserve_errors_total', { code: 'no-sharer' }), 1);
    assert.equal(value('sigserve_relay_latency_seconds_count', { kind: 'launch' }), 1);
    assert.equal(value('sigserve_relay_latency_seconds_bucket', { kind: 'launch', le: '+Inf' }), 1);
    assert.ok(value('sigserve_relay_latency_seconds_sum', { kind: 'answer' })! >= 0);
  });
});
