/**
 * What the server gives away: minted names cannot be guessed, no endpoint
 * lists shares, an answer cannot tell whether a name exists, and the logs
 * (even at debug level, even when requests fail) carry no payload, token,
 * share name or client address.
 */
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { after, afterEach, before, describe, it } from 'node:test';
import { SignJWT } from 'jose';
import { pino } from 'pino';
import { mintShareName } from '../../src/core/signaling-core.js';
import { loadConfig } from '../../src/server/config.js';
import { startServer, type RunningServer } from '../../src/server/server.js';
import { connect, disconnectAll, request, waitFor } from '../support/util.js';

const SECRET = 'privacy-test-secret-of-more-than-32-characters';

describe('privacy', () => {
  const lines: string[] = [];
  let server: RunningServer;
  before(async () => {
    const sink = new Writable({
      write(chunk: Buffer, _encoding, done) {
        lines.push(...chunk.toString().split('\n').filter(Boolean));
        done();
      },
    });
    const config = loadConfig({
      overrides: { port: 0, host: '127.0.0.1', authJwtSecret: SECRET, trustedProxies: 'loopback', rateBurst: 5, rateLimit: 1 },
    });
    server = await startServer({ config, logger: pino({ level: 'debug' }, sink) });
  });
  afterEach(() => disconnectAll());
  after(() => server.close());

  it('mints names with 144 random bits: URL-safe, distinct, every character equally likely', () => {
    const names = Array.from({ length: 20_000 }, () => mintShareName());
    assert.equal(new Set(names).size, names.length);
    for (const name of names.slice(0, 100)) assert.match(name, /^[A-Za-z0-9_-]{24}$/);
    // 64 symbols, 20,000 draws per position: each count near 312.5. A
    // position biased enough to help a guesser would stand far outside this.
    for (let position = 0; position < 24; position++) {
      const counts = new Map<string, number>();
      for (const name of names) counts.set(name[position]!, (counts.get(name[position]!) ?? 0) + 1);
      assert.equal(counts.size, 64, `position ${position} uses every symbol`);
      for (const count of counts.values()) assert.ok(count > 200 && count < 440, `position ${position}: a symbol drawn ${count} times`);
    }
  });

  it('lists no share name, uid or payload in /healthz or /metrics', async () => {
    const token = await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setExpirationTime('5m').sign(new TextEncoder().encode(SECRET));
    const sharer = await connect(server.url, { auth: { token } });
    const joiner = await connect(server.url);
    const { name } = await request<{ name: string }>(sharer, 'share');
    const launched = waitFor(sharer, 'launchResponse');
    await request(joiner, 'launch', name, 'uid-visible-nowhere', 'payload-visible-nowhere');
    await launched;
    for (const path of ['/healthz', '/readyz', '/metrics']) {
      const body = await (await fetch(`${server.url}${path}`)).text();
      for (const secret of [name, 'uid-visible-nowhere', 'payload-visible-nowhere']) assert.ok(!body.includes(secret), `${path} shows ${secret}`);
    }
  });

  it('answers a stranger alike whether a name exists or not', async () => {
    const token = await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setExpirationTime('5m').sign(new TextEncoder().encode(SECRET));
    const sharer = await connect(server.url, { auth: { token } });
    const { name } = await request<{ name: string }>(sharer, 'share');
    const stranger = await connect(server.url);
    const onExisting = await request(stranger, 'answer', name, 'some-uid', 'x');
    const onMissing = await request(stranger, 'answer', mintShareName(), 'some-uid', 'x');
    assert.deepEqual(onExisting, onMissing);
    assert.equal((onExisting as { error: { code: string } }).error.code, 'unknown-joiner');
  });

  it('logs no payload, token, share name or client address, even at debug level and on failures', async () => {
    const token = await new SignJWT({ share_prefix: 'secret-prefix/' })
      .setProtectedHeader({ alg: 'HS256' })
      .setExpirationTime('5m')
      .sign(new TextEncoder().encode(SECRET));
    const sdp = 'v=0 o=- 1 2 IN IP4 203.0.113.99 c=IN IP4 203.0.113.99';
    const sharer = await connect(server.url, { auth: { token }, extraHeaders: { 'x-forwarded-for': '192.0.2.201' } });
    const joiner = await connect(server.url, { extraHeaders: { 'x-forwarded-for': '192.0.2.202' } });
    const { name } = await request<{ name: string }>(sharer, 'share', 'secret-prefix/room-name');
    const launched = waitFor(sharer, 'launchResponse');
    await request(joiner, 'launch', name, 'joiner-uid-1', { sdp });
    await launched;
    await request(sharer, 'answer', name, 'joiner-uid-1', { sdp });
    // Failures: refused share, bad arguments, too large, and a flood that gets the joiner cut off.
    await request(joiner, 'share', 'secret-prefix/other');
    await request(joiner, 'launch', name, { sdp });
    await request(joiner, 'launch', name, 'joiner-uid-1', 'y'.repeat(70_000));
    const cut = waitFor(joiner, 'disconnect', 5000);
    for (let i = 0; i < 20; i++) joiner.emit('launch', name, 'joiner-uid-1', { sdp });
    await cut;
    assert.ok(lines.some((l) => l.includes('keeps flooding')), 'the flood was logged');
    const text = lines.join('\n');
    for (const secret of [sdp, '203.0.113.99', token, 'secret-prefix', 'room-name', 'joiner-uid-1', '192.0.2.201', '192.0.2.202']) {
      assert.ok(!text.includes(secret), `a log line contains ${secret}`);
    }
  });
});
