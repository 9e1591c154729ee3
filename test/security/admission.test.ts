/**
 * Who may connect: allowed origins (websocket upgrades included), connection
 * caps in total and per client address, new connections per address per
 * second, events per address per second, and the client address read from
 * X-Forwarded-For only behind a trusted proxy. Distinct client addresses
 * are simulated with X-Forwarded-For through a trusted loopback "proxy":
 * every byte stays on 127.0.0.1.
 */
import assert from 'node:assert/strict';
import { get, type IncomingHttpHeaders, type IncomingMessage } from 'node:http';
import type { Socket as NetSocket } from 'node:net';
import { after, afterEach, describe, it } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { io, type Socket as ClientSocket } from 'socket.io-client';
import WebSocket from 'ws';
import { addressKey, clientAddress, parseTrustedProxies } from '../../src/server/client-address.js';
import type { RunningServer } from '../../src/server/server.js';
import { connect, disconnectAll, eventually, request, startTestServer, type Settings } from '../support/util.js';

/** A raw engine.io long-polling handshake: status and body. */
function pollingHandshake(url: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    get(`${url}/socket.io/?EIO=4&transport=polling`, { headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    }).on('error', reject);
  });
}

/**
 * A raw websocket handshake: 'open', or how it was refused (engine.io
 * refuses upgrades with 400 and the reason as the body).
 */
function websocketHandshake(url: string, headers: Record<string, string> = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${url.replace('http', 'ws')}/socket.io/?EIO=4&transport=websocket`, { headers });
    ws.on('open', () => {
      ws.close();
      resolve('open');
    });
    ws.on('unexpected-response', (_req, res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve(`${res.statusCode} ${body}`));
    });
    ws.on('error', reject);
  });
}

const tried = new Set<ClientSocket>();

/** Tries a socket.io connection; resolves with the socket or the connect_error message. */
function tryConnect(url: string, headers: Record<string, string> = {}): Promise<ClientSocket | string> {
  const socket = io(url, { transports: ['websocket'], forceNew: true, reconnection: false, extraHeaders: headers });
  tried.add(socket);
  return new Promise((resolve) => {
    socket.once('connect', () => resolve(socket));
    socket.once('connect_error', (error) => resolve(error.message));
  });
}

async function metric(server: RunningServer, line: string): Promise<number> {
  const text = await (await fetch(`${server.url}/metrics`)).text();
  const found = text.split('\n').find((l) => l.startsWith(line));
  return found ? Number(found.slice(line.length).trim()) : 0;
}

const from = (address: string): Record<string, string> => ({ 'x-forwarded-for': address });

describe('admission', () => {
  const servers: RunningServer[] = [];
  const start = async (settings: Settings): Promise<RunningServer> => {
    const server = await startTestServer(settings);
    servers.push(server);
    return server;
  };
  afterEach(() => {
    disconnectAll();
    for (const socket of tried) socket.disconnect();
    tried.clear();
  });
  after(() => Promise.all(servers.map((s) => s.close())));

  it('refuses websocket upgrades and polling handshakes from an origin not listed, and counts them', async () => {
    const server = await start({ corsOrigins: 'https://good.example' });
    assert.equal(await websocketHandshake(server.url, { origin: 'https://evil.example' }), '400 origin');
    const polling = await pollingHandshake(server.url, { origin: 'https://evil.example' });
    assert.equal(polling.status, 403);
    assert.match(polling.body, /origin/);
    assert.equal(await websocketHandshake(server.url, { origin: 'https://good.example' }), 'open');
    assert.equal(await websocketHandshake(server.url), 'open', 'non-browser clients send no Origin');
    assert.equal(await metric(server, 'sigserve_refused_connections_total{reason="origin"}'), 2);
  });

  it('caps connections in total, and frees a place when one leaves', async () => {
    const server = await start({ maxConnections: 3 });
    const first = await connect(server.url);
    await connect(server.url);
    await connect(server.url);
    assert.equal(typeof (await tryConnect(server.url)), 'string', 'the 4th connection is refused');
    assert.equal(await metric(server, 'sigserve_refused_connections_total{reason="capacity"}'), 1);
    first.disconnect();
    await eventually(async () => typeof (await tryConnect(server.url)) !== 'string', 5000, 'a freed place');
  });

  it('caps connections per client address, read from X-Forwarded-For behind a trusted proxy', async () => {
    const server = await start({ maxConnectionsPerAddress: 2, trustedProxies: 'loopback' });
    await connect(server.url, { extraHeaders: from('203.0.113.5') });
    const second = await connect(server.url, { extraHeaders: from('203.0.113.5') });
    assert.equal(typeof (await tryConnect(server.url, from('203.0.113.5'))), 'string', 'a third from one address is refused');
    assert.notEqual(typeof (await tryConnect(server.url, from('203.0.113.6'))), 'string', 'another address is not');
    assert.equal(await metric(server, 'sigserve_refused_connections_total{reason="address-capacity"}'), 1);
    second.disconnect();
    await eventually(async () => typeof (await tryConnect(server.url, from('203.0.113.5'))) !== 'string', 5000, 'a freed place');
  });

  it('ignores X-Forwarded-For from a peer that is not a trusted proxy', async () => {
    const server = await start({ maxConnectionsPerAddress: 2 });
    await connect(server.url, { extraHeaders: from('203.0.113.1') });
    await connect(server.url, { extraHeaders: from('203.0.113.2') });
    assert.equal(typeof (await tryConnect(server.url, from('203.0.113.3'))), 'string', 'all three are 127.0.0.1');
  });

  it('limits new connections per address per second, and answers the handshake with rate-limited', async () => {
    // 1 a second over 10 s windows: 10 connections, then refusals.
    const server = await start({ addressConnectRate: 1, trustedProxies: 'loopback' });
    const statuses: number[] = [];
    for (let i = 0; i < 12; i++) statuses.push((await pollingHandshake(server.url, from('198.51.100.9'))).status);
    assert.deepEqual(statuses.slice(0, 10), Array(10).fill(200));
    assert.deepEqual(statuses.slice(10), [403, 403]);
    const refused = await pollingHandshake(server.url, from('198.51.100.9'));
    assert.match(refused.body, /rate-limited/);
    assert.equal((await pollingHandshake(server.url, from('198.51.100.10'))).status, 200, 'another address is not limited');
    assert.equal(await metric(server, 'sigserve_refused_connections_total{reason="rate-limited"}'), 3);
  });

  it('limits events per address across its sockets with rate-limited, sparing other addresses', async () => {
    // 5 events a second over 10 s windows: 50 per window for the address,
    // while each socket alone could send 400.
    const server = await start({ addressEventRate: 5, trustedProxies: 'loopback' });
    const sockets = await Promise.all([1, 2, 3].map(() => connect(server.url, { extraHeaders: from('192.0.2.77') })));
    const bystander = await connect(server.url, { extraHeaders: from('192.0.2.78') });
    let limited = 0;
    for (let round = 0; round < 60 && limited === 0; round++) {
      for (const socket of sockets) {
        const ack = await request<{ ok: boolean; error?: { code: string } }>(socket, 'unshare', 'nothing');
        if (!ack.ok && ack.error?.code === 'rate-limited') limited++;
      }
    }
    assert.ok(limited > 0, 'the address is rate-limited within 180 events');
    assert.deepEqual(await request(bystander, 'unshare', 'nothing'), { ok: true, names: [] });
    for (const socket of sockets) assert.equal(socket.connected, true, 'refused, not disconnected');
  });

  it('lets go of the upgrade request once admitted, keeping what handshakes read (socket.io engine)', async () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const server = await start({ trustedProxies: 'loopback', wsEngine: 'socket.io' });
    // Every request engine.io answered, websocket upgrades of polling sessions included.
    const requests: WeakRef<IncomingMessage>[] = [];
    server.io.engine.on('headers', (_headers: unknown, req: IncomingMessage) => requests.push(new WeakRef(req)));
    const seen: { header: unknown; token: unknown; address: string }[] = [];
    server.io.on('connection', (socket) => {
      seen.push({ header: socket.handshake.headers['x-forwarded-for'], token: socket.handshake.query['token'], address: socket.handshake.address });
    });
    const ws = await connect(server.url, { extraHeaders: from('192.0.2.90'), query: { token: 'a' } });
    const upgraded = await connect(server.url, { transports: ['polling', 'websocket'], extraHeaders: from('192.0.2.91'), query: { token: 'b' } });
    await eventually(() => upgraded.io.engine.transport.name === 'websocket', 5000, 'the polling client upgrades');
    assert.deepEqual(
      seen.map((s) => [s.header, s.token]),
      [
        ['192.0.2.90', 'a'],
        ['192.0.2.91', 'b'],
      ],
    );
    assert.ok(requests.length >= 3, 'the websocket handshake, the polling handshake and its upgrade were seen');
    await eventually(
      () => {
        gc();
        return requests.every((r) => r.deref() === undefined);
      },
      5000,
      'no request is held for an open connection',
    );
    // The connections still work, and the per-address count still knows them.
    assert.deepEqual(await request(ws, 'unshare', 'nothing'), { ok: true, names: [] });
    assert.deepEqual(await request(upgraded, 'unshare', 'nothing'), { ok: true, names: [] });
  });

  it('keeps no upgrade request for a connection of the direct engine, and counts it per address', async () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const server = await start({ trustedProxies: 'loopback', maxConnectionsPerAddress: 1 });
    const requests: WeakRef<IncomingMessage>[] = [];
    server.io.httpServer.prependListener('upgrade', (req: IncomingMessage) => requests.push(new WeakRef(req)));
    const ws = await connect(server.url, { extraHeaders: from('192.0.2.92') });
    assert.equal(server.io.engine.clientsCount, 0, 'served by the direct engine');
    // The per-address cap counts it: a second connection from that address is refused.
    assert.equal(typeof (await tryConnect(server.url, from('192.0.2.92'))), 'string', 'refused');
    assert.equal(await metric(server, 'sigserve_refused_connections_total{reason="address-capacity"}'), 1);
    await eventually(
      () => {
        gc();
        return requests.length === 2 && requests.every((r) => r.deref() === undefined);
      },
      5000,
      'no request is held for an open connection',
    );
    assert.deepEqual(await request(ws, 'unshare', 'nothing'), { ok: true, names: [] });
  });
});

describe('client address', () => {
  const req = (remoteAddress: string, headers: IncomingHttpHeaders = {}): IncomingMessage =>
    ({ socket: { remoteAddress } as NetSocket, headers }) as IncomingMessage;
  const trusted = parseTrustedProxies('loopback, 10.0.0.0/8, 2001:db8:ffff::/48');

  it('is the TCP peer unless the peer is a trusted proxy', () => {
    assert.equal(clientAddress(req('198.51.100.1', { 'x-forwarded-for': '1.2.3.4' }), trusted), '198.51.100.1');
    assert.equal(clientAddress(req('::ffff:198.51.100.1'), trusted), '198.51.100.1');
    assert.equal(clientAddress(req('127.0.0.1', { 'x-forwarded-for': '1.2.3.4' }), undefined), '127.0.0.1');
  });

  it('walks X-Forwarded-For from the right, past trusted proxies, to the first other hop', () => {
    assert.equal(clientAddress(req('127.0.0.1', { 'x-forwarded-for': '6.6.6.6, 198.51.100.7, 10.1.2.3' }), trusted), '198.51.100.7');
    assert.equal(clientAddress(req('10.0.0.2', { 'x-forwarded-for': '2001:db8::1' }), trusted), '2001:db8::1');
    assert.equal(clientAddress(req('::1', { 'x-forwarded-for': '10.0.0.9' }), trusted), '10.0.0.9', 'all trusted: the farthest');
    assert.equal(clientAddress(req('127.0.0.1', { 'x-forwarded-for': 'garbage' }), trusted), '127.0.0.1', 'unparsable: the peer');
    assert.equal(clientAddress(req('127.0.0.1', { 'x-forwarded-for': 'evil, 198.51.100.7' }), trusted), '198.51.100.7');
  });

  it('groups IPv6 clients by /64', () => {
    assert.equal(addressKey('2001:db8:1:2:aaaa::1'), '2001:db8:1:2::/64');
    assert.equal(addressKey('2001:0db8:0001:0002:ffff:1:2:3'), '2001:db8:1:2::/64');
    assert.equal(addressKey('2001:db8::1'), '2001:db8:0:0::/64');
    assert.equal(addressKey('::1'), '0:0:0:0::/64');
    assert.equal(addressKey('198.51.100.7'), '198.51.100.7');
  });

  it('rejects bad trusted-proxy entries', () => {
    assert.throws(() => parseTrustedProxies('10.0.0.0/33'), /10\.0\.0\.0\/33/);
    assert.throws(() => parseTrustedProxies('proxy.example'), /proxy\.example/);
    assert.equal(parseTrustedProxies(' '), undefined);
  });
});
