/**
 * HTTPS/WSS: the command started with TLS_CERT and TLS_KEY (a self-signed
 * certificate made by openssl for this test) serves socket.io over wss and
 * /healthz over https, and nothing in clear text.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { get as httpGet } from 'node:http';
import { get as httpsGet } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, before, describe, it } from 'node:test';
import { killAll, startCli } from './support/cli-process.js';
import { connect, disconnectAll, request, waitFor } from './support/util.js';

function makeCertificate(dir: string): { cert: string; key: string } {
  const cert = join(dir, 'cert.pem');
  const key = join(dir, 'key.pem');
  try {
    execFileSync(
      'openssl',
      [
        'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
        '-keyout', key, '-out', cert, '-days', '2', '-subj', '/CN=localhost',
        '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost',
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
  } catch (error) {
    throw new Error(`openssl failed (install it: sudo apt-get install -y openssl): ${String(error)}`);
  }
  return { cert, key };
}

function fetchWith(getter: typeof httpsGet | typeof httpGet, url: string, options: object): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = getter(url, options, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.setTimeout(5000, () => req.destroy(new Error('timed out')));
  });
}

describe('TLS', () => {
  let dir: string;
  let files: { cert: string; key: string };
  let server: Awaited<ReturnType<typeof startCli>>;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'sigserve-tls-'));
    files = makeCertificate(dir);
    server = await startCli([], { TLS_CERT: files.cert, TLS_KEY: files.key });
  });
  afterEach(() => disconnectAll());
  after(async () => {
    server.child.kill('SIGTERM');
    const { code } = await server.exit();
    await killAll();
    rmSync(dir, { recursive: true, force: true });
    assert.equal(code, 0);
  });

  it('announces an https URL', () => {
    assert.equal(server.url, `https://127.0.0.1:${server.port}`);
  });

  it('serves /healthz over https with the configured certificate', async () => {
    const reply = await fetchWith(httpsGet, `${server.url}/healthz`, { ca: readFileSync(files.cert) });
    assert.equal(reply.status, 200);
    assert.equal((JSON.parse(reply.body) as { status: string }).status, 'ok');
    // Clear text on the same port gets no answer.
    await assert.rejects(fetchWith(httpGet, `http://127.0.0.1:${server.port}/healthz`, {}));
  });

  it('relays a handshake between v4 clients over wss', async () => {
    const sharer = await connect(server.url, { rejectUnauthorized: false });
    const joiner = await connect(server.url, { rejectUnauthorized: false, transports: ['polling', 'websocket'] });
    assert.equal((await request<{ ok: boolean }>(sharer, 'share', 'tls-room')).ok, true);
    const launched = waitFor<[string, unknown]>(sharer, 'launchResponse');
    assert.deepEqual(await request(joiner, 'launch', 'tls-room', 'u', { type: 'offer', sdp: 'v=0' }), { ok: true, joinerUID: 'u' });
    assert.deepEqual(await launched, ['u', { type: 'offer', sdp: 'v=0' }]);
    const answered = waitFor(joiner, 'answerResponse');
    await request(sharer, 'answer', 'tls-room', 'u', { type: 'answer', sdp: 'v=0' });
    assert.deepEqual(await answered, [{ type: 'answer', sdp: 'v=0' }]);
  });

  it('a client that verifies certificates refuses the self-signed one', async () => {
    await assert.rejects(connect(server.url, { timeout: 2000 }));
  });
});
