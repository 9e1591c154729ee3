/**
 * Clients of the original's era against the real server: socket.io-client
 * 1.3.7, 1.7.4 and 2.5.0 (npm aliases), on polling-then-upgrade and on
 * websocket only, with each other and with a v4 client. Also what browsers
 * of existing pages need: /socket.io/socket.io.js and CORS.
 */
import assert from 'node:assert/strict';
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { after, afterEach, before, describe, it } from 'node:test';
import type { RunningServer } from '../src/server/server.js';
import {
  OLD_CLIENTS,
  connectOld,
  disconnectOld,
  installedVersion,
  requestOld,
  waitOld,
  type OldSocket,
  type Transports,
} from './support/old-clients.js';
import { connect, disconnectAll, eventually, request, startTestServer, waitFor, type TestSocket } from './support/util.js';

const offer = (tag: string) => ({ type: 'offer', sdp: `v=0\r\no=- ${tag} 2 IN IP4 127.0.0.1\r\n` });
const answer = (tag: string) => ({ type: 'answer', sdp: `v=0\r\no=- ${tag} 2 IN IP4 127.0.0.1\r\n` });
const candidate = (n: number) => ({ candidate: `candidate:${n} 1 udp 2122260223 127.0.0.1 5${n}000 typ host`, sdpMid: '0' });

/** Emits the short argument forms, which the typed event map leaves out. */
const emitLoose = (socket: TestSocket, event: string, ...args: unknown[]): void => {
  (socket as unknown as { emit(e: string, ...a: unknown[]): void }).emit(event, ...args);
};

let unique = 0;
const fresh = (prefix: string): string => `${prefix}-${++unique}-${Date.now().toString(36)}`;

interface ShareAck {
  ok: boolean;
  name?: string;
  expiresAt?: number;
  ttl?: number;
  joinerUID?: string;
  error?: { code: string; message: string };
}

describe('old socket.io clients', () => {
  let server: RunningServer;
  before(async () => {
    server = await startTestServer();
  });
  afterEach(() => {
    disconnectOld();
    disconnectAll();
  });
  after(() => server.close());

  it('the aliases resolve to the exact old versions', () => {
    for (const client of OLD_CLIENTS) assert.equal(installedVersion(client.alias), client.version, client.alias);
  });

  for (const client of OLD_CLIENTS) {
    for (const transports of ['default', 'websocket'] as Transports[]) {
      describe(`socket.io-client ${client.version} (${transports === 'default' ? 'polling, then upgrade' : 'websocket only'})`, () => {
        const old = (): Promise<OldSocket> => connectOld(client, server.url, transports);

        it('connects on the expected transport', async () => {
          const socket = await old();
          assert.equal(typeof socket.id, 'string');
          // The default starts on polling and must be upgraded by the server.
          await eventually(() => socket.io.engine.transport.name === 'websocket', 5000, 'transport websocket');
        });

        it('old sharer, v4 joiner: share, launch, answer in both argument forms', async () => {
          const name = fresh('old-sharer');
          const sharer = await old();
          const granted = await requestOld<ShareAck>(sharer, 'share', name, { ttl: 60_000 });
          assert.equal(granted.ok, true);
          assert.equal(granted.name, name);
          assert.equal(granted.ttl, 60_000);
          assert.ok(typeof granted.expiresAt === 'number' && granted.expiresAt > Date.now());

          const joiner = await connect(server.url);
          // 3-argument launch: the sharer sees the joiner's own uid.
          let launched = waitOld<[string, unknown]>(sharer, 'launchResponse');
          assert.deepEqual(await request(joiner, 'launch', name, 'uid-v4', offer('a')), { ok: true, joinerUID: 'uid-v4' });
          assert.deepEqual(await launched, ['uid-v4', offer('a')]);
          launched = waitOld(sharer, 'launchResponse');
          joiner.emit('launch', name, 'uid-v4', candidate(1));
          assert.deepEqual(await launched, ['uid-v4', candidate(1)]);

          // 3-argument answer, with an ack.
          let answered = waitFor<[unknown]>(joiner, 'answerResponse');
          assert.deepEqual(await requestOld(sharer, 'answer', name, 'uid-v4', answer('a')), { ok: true });
          assert.deepEqual(await answered, [answer('a')]);
          // 2-argument answer, without one.
          answered = waitFor(joiner, 'answerResponse');
          sharer.emit('answer', 'uid-v4', candidate(2));
          assert.deepEqual(await answered, [candidate(2)]);

          // 2-argument launch from the v4 side: the uid is the v4 socket id.
          const second = await connect(server.url);
          launched = waitOld(sharer, 'launchResponse');
          emitLoose(second, 'launch', name, offer('b'));
          const [uid, message] = await launched;
          assert.equal(uid, second.id);
          assert.deepEqual(message, offer('b'));
          answered = waitFor(second, 'answerResponse');
          sharer.emit('answer', uid, answer('b'));
          assert.deepEqual(await answered, [answer('b')]);
        });

        it('v4 sharer, old joiner: launch in both argument forms, answers arrive in order', async () => {
          const name = fresh('v4-sharer');
          const sharer = await connect(server.url);
          await request(sharer, 'share', name);
          const joiner = await old();

          // 2-argument launch, as the original client sent it: uid = its socket id.
          let launched = waitFor<[string, unknown]>(sharer, 'launchResponse');
          joiner.emit('launch', name, offer('c'));
          const [uid, message] = await launched;
          assert.equal(uid, joiner.id);
          assert.deepEqual(message, offer('c'));

          const received: unknown[] = [];
          joiner.on('answerResponse', (m: unknown) => received.push(m));
          emitLoose(sharer, 'answer', uid, answer('c'));
          for (let i = 0; i < 5; i++) sharer.emit('answer', name, uid, candidate(i));
          await eventually(() => received.length === 6, 3000, 'six answers');
          assert.deepEqual(received, [answer('c'), ...[0, 1, 2, 3, 4].map(candidate)]);

          // 3-argument launch with an ack.
          launched = waitFor(sharer, 'launchResponse');
          assert.deepEqual(await requestOld(joiner, 'launch', name, 'old-uid', offer('d')), { ok: true, joinerUID: 'old-uid' });
          assert.deepEqual(await launched, ['old-uid', offer('d')]);
        });

        it('two old clients relay to each other', async () => {
          const name = fresh('old-old');
          const sharer = await old();
          const joiner = await old();
          await requestOld(sharer, 'share', name);
          const launched = waitOld<[string, unknown]>(sharer, 'launchResponse');
          joiner.emit('launch', name, offer('e'));
          const [uid] = await launched;
          assert.equal(uid, joiner.id);
          const answered = waitOld(joiner, 'answerResponse');
          sharer.emit('answer', name, uid, answer('e'));
          assert.deepEqual(await answered, [answer('e')]);
        });

        it('carries binary messages between an old client and a v4 one', async () => {
          const name = fresh('binary');
          const sharer = await old();
          await requestOld(sharer, 'share', name);
          const joiner = await connect(server.url);
          const bytes = Buffer.from([0, 1, 2, 253, 254, 255]);
          const launched = waitOld<[string, unknown]>(sharer, 'launchResponse');
          joiner.emit('launch', name, 'bin-uid', { blob: bytes });
          const [, message] = await launched;
          const blob = (message as { blob: unknown }).blob;
          assert.deepEqual(Buffer.from(blob instanceof ArrayBuffer ? new Uint8Array(blob) : (blob as Uint8Array)), bytes);
          const answered = waitFor<[{ blob: Buffer }]>(joiner, 'answerResponse');
          sharer.emit('answer', name, 'bin-uid', { blob: Buffer.from(bytes).reverse() });
          const [back] = await answered;
          assert.deepEqual(Buffer.from(back.blob), Buffer.from(bytes).reverse());
        });

        it('receives signalingError and a failed ack, and stays connected', async () => {
          const name = fresh('nobody');
          const joiner = await old();
          const failed = waitOld<[{ code: string; event: string; name?: string }]>(joiner, 'signalingError');
          const ack = await requestOld<ShareAck>(joiner, 'launch', name, 'u', offer('f'));
          assert.equal(ack.ok, false);
          assert.equal(ack.error?.code, 'no-sharer');
          const [body] = await failed;
          assert.equal(body.code, 'no-sharer');
          assert.equal(body.event, 'launch');
          assert.equal(body.name, name);

          const unknown = waitOld<[{ code: string }]>(joiner, 'signalingError');
          joiner.emit('answer', 'no-such-joiner', answer('f'));
          assert.equal((await unknown)[0].code, 'unknown-joiner');

          // Still connected and served: share and be joined.
          assert.equal(joiner.connected, true);
          const granted = await requestOld<ShareAck>(joiner, 'share', name);
          assert.equal(granted.ok, true);
          const v4 = await connect(server.url);
          assert.deepEqual(await request(v4, 'launch', name, 'u2', offer('g')), { ok: true, joinerUID: 'u2' });
        });

        it('is told sharer-gone when its sharer disconnects, and gets shareExpired as a sharer', async () => {
          const name = fresh('gone');
          const v4Sharer: TestSocket = await connect(server.url);
          await request(v4Sharer, 'share', name);
          const joiner = await old();
          const launched = waitFor(v4Sharer, 'launchResponse');
          joiner.emit('launch', name, offer('h'));
          await launched;
          const gone = waitOld<[{ code: string; name: string; joinerUID: string }]>(joiner, 'signalingError');
          v4Sharer.disconnect();
          const [body] = await gone;
          assert.equal(body.code, 'sharer-gone');
          assert.equal(body.name, name);
          assert.equal(body.joinerUID, joiner.id);

          const expiring = fresh('expiring');
          const expired = waitOld<[string]>(joiner, 'shareExpired', 5000);
          await requestOld(joiner, 'share', expiring, { ttl: 200 });
          assert.deepEqual(await expired, [expiring]);
        });
      });
    }
  }
});

interface HttpReply {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

function get(url: string, headers: Record<string, string> = {}, method = 'GET'): Promise<HttpReply> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { method, headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('what browser pages need', () => {
  afterEach(() => disconnectAll());

  describe('default settings', () => {
    let server: RunningServer;
    before(async () => {
      server = await startTestServer();
    });
    after(() => server.close());

    it('serves the socket.io browser client at /socket.io/socket.io.js', async () => {
      const reply = await get(`${server.url}/socket.io/socket.io.js`);
      assert.equal(reply.status, 200);
      assert.match(String(reply.headers['content-type']), /javascript/);
      assert.ok(reply.body.length > 10_000, `client bundle is only ${reply.body.length} bytes`);
      assert.match(reply.body, /Socket\.IO v4\./);
    });

    it('accepts cross-origin polling clients (EIO 3 and 4) and preflights', async () => {
      for (const eio of [3, 4]) {
        const reply = await get(`${server.url}/socket.io/?EIO=${eio}&transport=polling`, { Origin: 'https://pages.example' });
        assert.equal(reply.status, 200, `EIO=${eio}: ${reply.body}`);
        assert.ok(['*', 'https://pages.example'].includes(String(reply.headers['access-control-allow-origin'])), `EIO=${eio}`);
        assert.match(reply.body, /"sid"/);
      }
      const preflight = await get(
        `${server.url}/socket.io/?EIO=4&transport=polling`,
        { Origin: 'https://pages.example', 'Access-Control-Request-Method': 'POST', 'Access-Control-Request-Headers': 'content-type' },
        'OPTIONS',
      );
      assert.ok(preflight.status === 204 || preflight.status === 200, `preflight status ${preflight.status}`);
      assert.ok(preflight.headers['access-control-allow-origin']);
      assert.match(String(preflight.headers['access-control-allow-methods']), /POST/);
    });

    it('accepts a websocket client that sends a foreign Origin', async () => {
      const socket = await connect(server.url, { extraHeaders: { Origin: 'https://pages.example' } });
      assert.equal(socket.connected, true);
    });
  });

  describe('CORS_ORIGINS set', () => {
    let server: RunningServer;
    const allowed = 'https://good.example';
    before(async () => {
      server = await startTestServer({ corsOrigins: `${allowed}, https://also-good.example` });
    });
    after(() => server.close());

    it('allows the listed origins on polling requests', async () => {
      for (const origin of [allowed, 'https://also-good.example']) {
        const reply = await get(`${server.url}/socket.io/?EIO=4&transport=polling`, { Origin: origin });
        assert.equal(reply.status, 200, reply.body);
        assert.equal(reply.headers['access-control-allow-origin'], origin);
      }
    });

    it('gives other origins no CORS grant and refuses their connections', async () => {
      const polling = await get(`${server.url}/socket.io/?EIO=4&transport=polling`, { Origin: 'https://evil.example' });
      assert.equal(polling.headers['access-control-allow-origin'], undefined);
      assert.notEqual(polling.status, 200, 'a polling handshake from another origin must be refused');
      // Browsers do not apply CORS to websockets: the server itself must refuse them.
      await assert.rejects(connect(server.url, { extraHeaders: { Origin: 'https://evil.example' } }));
    });

    it('still serves the listed origin and clients that send no Origin (non-browser)', async () => {
      const fromPage = await connect(server.url, { extraHeaders: { Origin: allowed } });
      const fromNode = await connect(server.url);
      const name = fresh('cors');
      await request(fromPage, 'share', name);
      const launched = waitFor(fromPage, 'launchResponse');
      assert.deepEqual(await request(fromNode, 'launch', name, 'u', offer('i')), { ok: true, joinerUID: 'u' });
      assert.deepEqual(await launched, ['u', offer('i')]);
    });
  });
});
