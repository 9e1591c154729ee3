/**
 * Share authorization: with AUTH_JWT_SECRET or AUTH_JWT_PUBLIC_KEY set, only
 * a socket whose handshake carried a valid token may share; joiners need
 * nothing. Tokens are minted here with jose, as an application backend would.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, before, describe, it } from 'node:test';
import { exportSPKI, generateKeyPair, SignJWT, UnsecuredJWT } from 'jose';
import { InMemoryRegistry } from '../../src/cluster/in-memory-registry.js';
import { LocalDelivery } from '../../src/cluster/local-delivery.js';
import { denyAll } from '../../src/core/share-policy.js';
import { SignalingCore } from '../../src/core/signaling-core.js';
import { SignalingError } from '../../src/core/signaling-error.js';
import type { RunningServer } from '../../src/server/server.js';
import { ConfigError, loadConfig } from '../../src/server/config.js';
import { ManualClock } from '../support/manual-clock.js';
import { connect, disconnectAll, request, startTestServer, waitFor } from '../support/util.js';

const SECRET = 'an application secret of at least thirty-two characters';
const key = new TextEncoder().encode(SECRET);
const now = (): number => Math.floor(Date.now() / 1000);

/** What an application backend does: a short-lived HS256 token for one user. */
function mint(claims: Record<string, unknown> = {}, options: { exp?: number | undefined; secret?: Uint8Array } = {}): Promise<string> {
  const jwt = new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).setIssuedAt().setSubject('user-42');
  if (!('exp' in options)) jwt.setExpirationTime('10m');
  else if (options.exp !== undefined) jwt.setExpirationTime(options.exp);
  return jwt.sign(options.secret ?? key);
}

interface Ack {
  ok: boolean;
  name?: string;
  ttl?: number;
  error?: { code: string; message: string };
}

describe('share authorization with a shared secret', () => {
  let server: RunningServer;
  before(async () => {
    server = await startTestServer({ authJwtSecret: SECRET });
  });
  afterEach(() => disconnectAll());
  after(() => server.close());

  it('refuses share without a token with unauthorized (ack and signalingError), and keeps the socket', async () => {
    const client = await connect(server.url);
    const error = waitFor<[{ code: string; event: string; message: string }]>(client, 'signalingError');
    const ack = await request<Ack>(client, 'share', 'room');
    assert.equal(ack.ok, false);
    assert.equal(ack.error?.code, 'unauthorized');
    assert.match(ack.error!.message, /auth\.token/);
    const [body] = await error;
    assert.equal(body.code, 'unauthorized');
    assert.equal(body.event, 'share');
    assert.equal(client.connected, true);
  });

  it('lets a token bearer share and a joiner without a token join', async () => {
    const sharer = await connect(server.url, { auth: { token: await mint() } });
    const joiner = await connect(server.url);
    const granted = await request<Ack>(sharer, 'share', 'open-room');
    assert.equal(granted.ok, true);
    const launched = waitFor<[string, unknown]>(sharer, 'launchResponse');
    assert.deepEqual(await request(joiner, 'launch', 'open-room', 'j1', 'offer'), { ok: true, joinerUID: 'j1' });
    assert.deepEqual(await launched, ['j1', 'offer']);
    const answered = waitFor<[unknown]>(joiner, 'answerResponse');
    assert.deepEqual(await request(sharer, 'answer', 'open-room', 'j1', 'answer'), { ok: true });
    assert.deepEqual(await answered, ['answer']);
    // A joiner still cannot share.
    assert.equal((await request<Ack>(joiner, 'share', 'open-room')).error?.code, 'unauthorized');
  });

  it('restricts names to the share_prefix claim and mints names under it', async () => {
    const sharer = await connect(server.url, { auth: { token: await mint({ share_prefix: 'acme/' }) } });
    assert.equal((await request<Ack>(sharer, 'share', 'acme/board')).ok, true);
    const outside = await request<Ack>(sharer, 'share', 'other/board');
    assert.equal(outside.error?.code, 'unauthorized');
    const minted = await request<Ack>(sharer, 'share');
    assert.equal(minted.ok, true);
    assert.match(minted.name!, /^acme\/[A-Za-z0-9_-]{24}$/);
  });

  it('caps the lifetime at the share_ttl_max claim', async () => {
    const sharer = await connect(server.url, { auth: { token: await mint({ share_ttl_max: 60_000 }) } });
    const granted = await request<Ack>(sharer, 'share', 'short', { ttl: 3_000_000 });
    assert.equal(granted.ok, true);
    assert.equal(granted.ttl, 60_000);
  });

  it('refuses expired, badly signed, unsigned, exp-less and malformed tokens, each with a reason', async () => {
    const cases: [string, unknown, RegExp][] = [
      ['expired', await mint({}, { exp: now() - 60 }), /expired/],
      ['wrong secret', await mint({}, { secret: new TextEncoder().encode('x'.repeat(40)) }), /signature/],
      ['alg none', new UnsecuredJWT({ sub: 'u' }).setExpirationTime('10m').encode(), /algorithm|malformed/],
      ['no exp', await mint({}, { exp: undefined }), /exp/],
      ['garbage', 'not.a.jwt', /malformed/],
      ['not a string', { nested: true }, /malformed/],
      ['huge', 'a'.repeat(20_000), /malformed/],
      ['bad prefix claim', await mint({ share_prefix: 42 }), /share_prefix/],
      ['bad ttl claim', await mint({ share_ttl_max: -1 }), /share_ttl_max/],
    ];
    for (const [label, token, reason] of cases) {
      const client = await connect(server.url, { auth: { token } });
      const ack = await request<Ack>(client, 'share', 'x');
      assert.equal(ack.error?.code, 'unauthorized', label);
      assert.match(ack.error!.message, reason, label);
      assert.equal(client.connected, true, label);
    }
  });

  it('reads ?token= for clients that have no handshake auth (socket.io 1.x/2.x)', async () => {
    const sharer = await connect(server.url, { query: { token: await mint() } });
    assert.equal((await request<Ack>(sharer, 'share', 'legacy')).ok, true);
  });

  it('counts unauthorized in /metrics', async () => {
    const text = await (await fetch(`${server.url}/metrics`)).text();
    const line = text.split('\n').find((l) => l.startsWith('sigserve_errors_total{code="unauthorized"}'));
    assert.ok(line && Number(line.split(' ')[1]) > 0, 'unauthorized errors are counted');
  });
});

describe('share authorization with a public key', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sigserve-auth-'));
  let server: RunningServer;
  let privateKey: CryptoKey;
  let publicPem: string;
  before(async () => {
    const pair = await generateKeyPair('ES256', { extractable: true });
    privateKey = pair.privateKey;
    publicPem = await exportSPKI(pair.publicKey);
    writeFileSync(join(dir, 'share.pub.pem'), publicPem);
    server = await startTestServer({
      authJwtPublicKey: join(dir, 'share.pub.pem'),
      authJwtIssuer: 'https://app.example',
      authJwtAudience: 'sigserve',
    });
  });
  afterEach(() => disconnectAll());
  after(() => server.close());

  const signed = (claims: { iss?: string; aud?: string } = {}): Promise<string> =>
    new SignJWT({})
      .setProtectedHeader({ alg: 'ES256' })
      .setIssuer(claims.iss ?? 'https://app.example')
      .setAudience(claims.aud ?? 'sigserve')
      .setExpirationTime('5m')
      .sign(privateKey);

  it('accepts a token signed by the private key with the configured iss and aud', async () => {
    const sharer = await connect(server.url, { auth: { token: await signed() } });
    assert.equal((await request<Ack>(sharer, 'share', 'signed')).ok, true);
  });

  it('refuses a wrong issuer or audience', async () => {
    for (const claims of [{ iss: 'https://evil.example' }, { aud: 'someone-else' }]) {
      const sharer = await connect(server.url, { auth: { token: await signed(claims) } });
      const ack = await request<Ack>(sharer, 'share', 'signed');
      assert.equal(ack.error?.code, 'unauthorized');
      assert.match(ack.error!.message, /iss|aud/);
    }
  });

  it('refuses an HS256 token keyed with the public key text (algorithm confusion)', async () => {
    const forged = await new SignJWT({})
      .setProtectedHeader({ alg: 'HS256' })
      .setIssuer('https://app.example')
      .setAudience('sigserve')
      .setExpirationTime('5m')
      .sign(new TextEncoder().encode(publicPem));
    const sharer = await connect(server.url, { auth: { token: forged } });
    const ack = await request<Ack>(sharer, 'share', 'forged');
    assert.equal(ack.error?.code, 'unauthorized');
    assert.match(ack.error!.message, /algorithm/);
  });
});

describe('share authorization settings', () => {
  const problems = (overrides: Record<string, string>): string => {
    try {
      loadConfig({ overrides });
    } catch (error) {
      assert.ok(error instanceof ConfigError);
      return error.message;
    }
    return '';
  };

  it('fails at start on a short secret, on both a secret and a key, and on an unreadable key', () => {
    assert.match(problems({ authJwtSecret: 'short' }), /AUTH_JWT_SECRET.*32/);
    assert.match(problems({ authJwtSecret: SECRET, authJwtPublicKey: '/nonexistent.pem' }), /not both/);
    assert.match(problems({ authJwtPublicKey: '/nonexistent/key.pem' }), /AUTH_JWT_PUBLIC_KEY.*ENOENT/);
    assert.match(problems({ authJwtPublicKey: '-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----' }), /AUTH_JWT_PUBLIC_KEY/);
  });

  it('is off by default: anyone may share', () => {
    assert.equal(loadConfig().shareAuth, undefined);
  });
});

describe('share policy in the core', () => {
  const setup = () => {
    const clock = new ManualClock();
    const core = new SignalingCore({
      registry: new InMemoryRegistry(),
      delivery: new LocalDelivery(),
      sink: { launchResponse() {}, answerResponse() {}, shareExpired() {}, sharerGone() {} },
      clock,
      limits: { defaultTtl: 10_000, maxTtl: 60_000, maxSharesPerSocket: 4, maxRoutesPerSocket: 4 },
    });
    return { clock, core };
  };
  const code = async (promise: Promise<unknown>): Promise<string | undefined> => {
    try {
      await promise;
      return undefined;
    } catch (error) {
      assert.ok(error instanceof SignalingError);
      return error.code;
    }
  };

  it('stops a socket from sharing once its token has expired, mid-connection', async () => {
    const { clock, core } = setup();
    core.attach('s', { allowed: true, validUntil: clock.now() + 1_000 });
    assert.equal(await code(core.share('s', 'a', {})), undefined);
    clock.advance(1_000);
    assert.equal(await code(core.share('s', 'b', {})), 'unauthorized');
    // What it already shares goes on: only new shares need the token.
    assert.deepEqual(await core.unshare('s', 'a'), ['a']);
  });

  it('refuses everything under a deny policy and nothing without one', async () => {
    const { core } = setup();
    core.attach('denied', denyAll('no token'));
    core.attach('open');
    assert.equal(await code(core.share('denied', undefined, {})), 'unauthorized');
    assert.equal(await code(core.share('open', undefined, {})), undefined);
  });
});
