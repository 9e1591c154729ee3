/**
 * The command as users run it: `node dist/cli.js` in a child process on
 * 127.0.0.1 (help, settings from flags and environment, bad settings, JSON
 * logs, graceful shutdown on signals, payload privacy), the `bin` entry
 * through npx, and the package entry's startServer/loadConfig.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { after, afterEach, describe, it } from 'node:test';
import { pino } from 'pino';
import { loadConfig, settingNames, type SettingKey } from '../src/server/config.js';
import { freePort, killAll, parseHelp, spawnCli, startCli, type LogLine } from './support/cli-process.js';
import { connect, disconnectAll, request, waitFor, type TestSocket } from './support/util.js';

afterEach(async () => {
  disconnectAll();
  await killAll();
});

const helpRows = async (args = ['--help']) => {
  const proc = spawnCli(args);
  const { code } = await proc.exit();
  assert.equal(code, 0, proc.stderr());
  return { rows: parseHelp(proc.stdout()), text: proc.stdout() };
};

/** Emits the short argument forms and ill-typed ones, which the typed event map leaves out. */
const emitLoose = (socket: TestSocket, event: string, ...args: unknown[]): void => {
  (socket as unknown as { emit(e: string, ...a: unknown[]): void }).emit(event, ...args);
};
const requestLoose = (socket: TestSocket, event: string, ...args: unknown[]) =>
  request<{ ok: boolean; error?: { code: string } }>(socket, event, ...args);

describe('--help', () => {
  it('lists every setting with its flag, environment variable and default', async () => {
    const { rows, text } = await helpRows();
    const byEnv = new Map(rows.map((r) => [r.env, r]));
    const expected: [flag: string, env: string, fallback: string | undefined][] = [
      ['--port', 'PORT', '5000'],
      ['--host', 'HOST', undefined],
      ['--share-ttl-default', 'SHARE_TTL_DEFAULT', undefined],
      ['--share-ttl-max', 'SHARE_TTL_MAX', undefined],
      ['--max-message-size', 'MAX_MESSAGE_SIZE', '65536'],
      ['--max-shares-per-socket', 'MAX_SHARES_PER_SOCKET', undefined],
      ['--cors-origins', 'CORS_ORIGINS', '*'],
      ['--log-level', 'LOG_LEVEL', 'info'],
      ['--tls-cert', 'TLS_CERT', undefined],
      ['--tls-key', 'TLS_KEY', undefined],
    ];
    for (const [flag, env, fallback] of expected) {
      const row = byEnv.get(env);
      assert.ok(row, `--help does not list ${env}:\n${text}`);
      assert.equal(row.flag, flag);
      assert.ok(row.meaning.length > 0, `${env} has no explanation`);
      if (fallback !== undefined) assert.equal(row.default, fallback, `default of ${env}`);
    }
    assert.match(byEnv.get('LOG_LEVEL')!.meaning, /debug.*info.*warn.*error/);
    // Every setting the configuration has is in the table, under the names loadConfig reads.
    const config = loadConfig();
    const keys = Object.keys(config).filter((k) => k !== 'origins' && k !== 'tls') as SettingKey[];
    for (const key of keys) {
      let names: { flag: string; env: string } | undefined;
      try {
        names = settingNames(key);
      } catch {
        continue; // a derived value, not a setting
      }
      if (!names) continue;
      const row = byEnv.get(names.env);
      assert.ok(row, `setting ${key} (${names.env}) is missing from --help`);
      assert.equal(row.flag, `--${names.flag}`);
      const shown = row.default === '(none)' ? undefined : row.default;
      if (shown !== undefined && typeof config[key] === 'number') assert.equal(String(config[key]), shown, `default of ${names.env}`);
    }
    assert.equal((await helpRows(['-h'])).text, text);
  });

  it('npm start serves on port 5000 by default (as the original)', () => {
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
      scripts: Record<string, string>;
      bin: Record<string, string>;
    };
    assert.equal(pkg.scripts['start'], 'node dist/cli.js');
    assert.equal(loadConfig({ env: {} }).port, 5000);
    assert.equal(loadConfig({ env: {} }).logLevel, 'info');
    assert.equal(loadConfig({ env: {} }).origins, true);
    assert.equal(pkg.bin['sigserve'], 'dist/cli.js');
  });

  it('the bin entry runs through npx', async () => {
    const proc = spawnCli(['--help'], {}, { command: ['npx', '--no-install', 'sigserve'] });
    const { code } = await proc.exit(60_000);
    assert.equal(code, 0, proc.stderr());
    assert.match(proc.stdout(), /^Usage: sigserve/);
    assert.ok(parseHelp(proc.stdout()).some((r) => r.env === 'PORT'));
  });
});

describe('bad settings', () => {
  const cases: { args?: string[]; env?: Record<string, string>; names: string[] }[] = [
    { args: ['--port', 'abc'], names: ['PORT', '--port'] },
    { env: { PORT: '70000' }, names: ['PORT'] },
    { args: ['--log-level', 'loud'], names: ['LOG_LEVEL', '--log-level'] },
    { env: { MAX_MESSAGE_SIZE: '0' }, names: ['MAX_MESSAGE_SIZE'] },
    { args: ['--share-ttl-default', '1000', '--share-ttl-max', '10'], names: ['SHARE_TTL_DEFAULT', 'SHARE_TTL_MAX'] },
    { args: ['--tls-cert', '/nonexistent/cert.pem'], names: ['TLS_KEY'] },
    { args: ['--tls-cert', '/nonexistent/cert.pem', '--tls-key', '/nonexistent/key.pem'], names: ['TLS_CERT', '/nonexistent/cert.pem'] },
    { args: ['--no-such-setting', '1'], names: ['--no-such-setting'] },
    // Every problem at once, not only the first.
    { args: ['--port', '99999', '--log-level', 'verbose'], names: ['PORT', 'LOG_LEVEL'] },
  ];
  for (const { args = [], env = {}, names } of cases) {
    it(`fails at start naming ${names.join(' and ')} (${[...args, ...Object.entries(env).map(([k, v]) => `${k}=${v}`)].join(' ')})`, async () => {
      const proc = spawnCli(['--host', '127.0.0.1', ...args], env);
      const { code } = await proc.exit();
      assert.notEqual(code, 0);
      assert.notEqual(code, null);
      for (const name of names) assert.ok(proc.stderr().includes(name), `stderr does not name ${name}: ${proc.stderr()}`);
      assert.doesNotMatch(proc.stdout(), /listening/);
    });
  }

  it('fails with a message when the port is taken', async () => {
    const first = await startCli();
    const second = spawnCli(['--host', '127.0.0.1', '--port', String(first.port)]);
    const { code } = await second.exit();
    assert.notEqual(code, 0);
    assert.match(second.stderr() + second.stdout(), /EADDRINUSE/);
  });
});

describe('settings from environment and flags', () => {
  it('reads the environment; a flag wins over its variable', async () => {
    const [envPort, flagPort] = [await freePort(), await freePort()];
    const fromEnv = spawnCli([], { PORT: String(envPort), HOST: '127.0.0.1', MAX_MESSAGE_SIZE: '1000' });
    const listening = await fromEnv.waitForLog((l) => l.msg === 'listening');
    assert.equal(listening['port'], envPort);
    const fromFlag = spawnCli(['--port', String(flagPort), '--max-message-size', '4000'], {
      PORT: String(envPort),
      HOST: '127.0.0.1',
      MAX_MESSAGE_SIZE: '1000',
    });
    assert.equal((await fromFlag.waitForLog((l) => l.msg === 'listening'))['port'], flagPort);

    // The limit each process enforces shows which value it took.
    const message = 'x'.repeat(2000);
    for (const [port, expected] of [
      [envPort, 'too-large'],
      [flagPort, 'no-sharer'],
    ] as const) {
      const socket = await connect(`http://127.0.0.1:${port}`);
      const ack = await requestLoose(socket, 'launch', 'nobody-shares-this', 'uid', message);
      assert.equal(ack.error?.code, expected, `port ${port}`);
    }
  });

  it('LOG_LEVEL from the environment, overridden by --log-level', async () => {
    const servers = [await startCli([], { LOG_LEVEL: 'debug' }), await startCli(['--log-level', 'info'], { LOG_LEVEL: 'debug' })];
    for (const server of servers) {
      const socket = await connect(server.url);
      await request(socket, 'share', 'log-level'); // the connection was handled (and logged) before this ack
      server.child.kill('SIGTERM');
      assert.equal((await server.exit()).code, 0);
    }
    const [debug, info] = servers.map((s) => s.logs().filter((l) => l.level < 30).map((l) => l.msg));
    assert.ok(debug!.includes('connected'), `debug lines: ${debug!.join(', ')}`);
    assert.deepEqual(info, []);
  });
});

describe('logs', () => {
  it('are JSON lines with a level, a time and a message, including listening with the URL', async () => {
    const server = await startCli();
    const socket = await connect(server.url);
    socket.disconnect();
    server.child.kill('SIGTERM');
    assert.equal((await server.exit()).code, 0);
    const lines = server.logs();
    assert.ok(lines.length >= 3, `only ${lines.length} lines`);
    for (const line of lines) {
      assert.equal(typeof line.level, 'number');
      assert.equal(typeof line['time'], 'number');
      assert.equal(typeof line.msg, 'string');
    }
    const listening = lines.find((l) => l.msg === 'listening')!;
    assert.equal(listening.level, 30);
    assert.equal(listening['url'], `http://127.0.0.1:${server.port}`);
    assert.ok(server.port > 0);
    assert.equal(server.stderr(), '');
  });
});

describe('graceful shutdown', () => {
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    it(`${signal} with connected clients: every client sees a disconnect, the process exits 0`, async () => {
      const server = await startCli();
      const sharer = await connect(server.url);
      const joiner = await connect(server.url, { transports: ['polling'] });
      const upgraded = await connect(server.url, { transports: ['polling', 'websocket'] });
      await request(sharer, 'share', 'shutdown-room');
      const launched = waitFor(sharer, 'launchResponse');
      assert.deepEqual(await request(joiner, 'launch', 'shutdown-room', 'u', 'offer'), { ok: true, joinerUID: 'u' });
      await launched;

      const disconnects = [sharer, joiner, upgraded].map((s) => waitFor<[string]>(s, 'disconnect', 10_000));
      assert.equal(server.child.kill(signal), true);
      const reasons = (await Promise.all(disconnects)).map(([reason]) => reason);
      assert.equal(reasons.length, 3);
      const { code, signal: killedBy } = await server.exit();
      assert.equal(killedBy, null);
      assert.equal(code, 0, server.stderr());
      const messages = server.logs().map((l) => l.msg);
      assert.ok(messages.includes('signal received'), messages.join(', '));
      assert.ok(messages.includes('stopped'), messages.join(', '));
      assert.equal(server.logs().find((l) => l.msg === 'signal received')?.['signal'], signal);
      // Stopped accepting: nothing listens on the port any more.
      await assert.rejects(fetch(`${server.url}/healthz`));
    });
  }
});

describe('privacy', () => {
  it('never logs message payloads, even at debug level and on failed requests', async () => {
    const MARKER = `PAYLOAD-MARKER-${randomUUID()}`;
    const IP = '198.51.100.213';
    const sdp = [
      'v=0',
      `o=- 4611731400430051336 2 IN IP4 ${IP}`,
      's=-',
      `c=IN IP4 ${IP}`,
      `a=candidate:842163049 1 udp 1677729535 ${IP} 61665 typ srflx raddr 0.0.0.0 rport 0`,
      `a=x-marker:${MARKER}`,
      '',
    ].join('\r\n');
    const offer = { type: 'offer', sdp };
    const server = await startCli(['--max-message-size', '4096'], { LOG_LEVEL: 'debug' });

    const sharer = await connect(server.url);
    const joiner = await connect(server.url);
    const other = await connect(server.url);
    assert.equal((await request<{ ok: boolean }>(sharer, 'share', 'privacy-room')).ok, true);

    // Relayed: both argument forms each way; it arrives intact.
    const launched = waitFor<[string, unknown]>(sharer, 'launchResponse');
    assert.equal((await requestLoose(joiner, 'launch', 'privacy-room', 'uid-p', offer)).ok, true);
    assert.deepEqual(await launched, ['uid-p', offer]);
    emitLoose(joiner, 'launch', 'privacy-room', `candidate:1 1 udp 1 ${IP} 9 typ host ${MARKER}`);
    const answered = waitFor<[unknown]>(joiner, 'answerResponse');
    assert.equal((await requestLoose(sharer, 'answer', 'privacy-room', 'uid-p', { type: 'answer', sdp })).ok, true);
    assert.deepEqual(await answered, [{ type: 'answer', sdp }]);
    emitLoose(sharer, 'answer', 'uid-p', `candidate:2 1 udp 1 ${IP} 9 typ host ${MARKER}`);

    // Failed requests carrying the payload, each answered with its code.
    const failures: [string, Promise<{ ok: boolean; error?: { code: string } }>][] = [
      ['too-large', requestLoose(joiner, 'launch', 'privacy-room', 'uid-p', { type: 'offer', sdp: sdp + 'x'.repeat(5000) })],
      ['no-sharer', requestLoose(other, 'launch', 'nobody-here', 'uid-q', offer)],
      ['bad-request', requestLoose(other, 'launch', offer, 'uid-q', offer)],
      ['bad-request', requestLoose(other, 'launch', 'privacy-room', offer, offer)],
      ['bad-request', requestLoose(other, 'share', 'x', { ttl: MARKER, maxJoins: IP })],
      ['bad-request', requestLoose(other, 'answer', `${'y'.repeat(300)}${MARKER}`, offer)],
      ['unknown-joiner', requestLoose(sharer, 'answer', 'privacy-room', 'nobody', offer)],
      ['uid-taken', requestLoose(other, 'launch', 'privacy-room', 'uid-p', offer)],
    ];
    for (const [code, pending] of failures) assert.equal((await pending).error?.code, code);

    // The sharer leaves mid-exchange; a frame beyond the transport limit cuts a connection.
    const gone = waitFor<[{ code: string }]>(joiner, 'signalingError');
    sharer.disconnect();
    assert.equal((await gone)[0].code, 'sharer-gone');
    const cut = waitFor(other, 'disconnect', 10_000);
    emitLoose(other, 'launch', 'privacy-room', 'uid-r', `${MARKER} ${IP} ${'z'.repeat(1_100_000)}`);
    await cut;

    server.child.kill('SIGTERM');
    assert.equal((await server.exit()).code, 0);
    const output = server.stdout() + server.stderr();
    // The test can fail: debug lines were written, about these very sockets.
    const debugLines = server.logs().filter((l: LogLine) => l.level === 20);
    assert.ok(debugLines.filter((l) => l.msg === 'connected').length >= 3, 'expected debug lines about these sockets');
    assert.equal(output.includes(MARKER), false, 'a payload marker reached the logs');
    assert.equal(output.includes(IP), false, 'an SDP address reached the logs');
  });
});

describe('package entry', () => {
  const stop: (() => Promise<void>)[] = [];
  after(async () => {
    for (const s of stop) await s();
  });

  it('startServer and loadConfig from the package start a working server from code', async () => {
    // Resolved through package.json "exports", as users import it.
    const entry = 'sigserve';
    assert.ok(import.meta.resolve(entry).endsWith('/dist/index.js'), import.meta.resolve(entry));
    const pkg = (await import(entry)) as typeof import('../src/index.js');
    const config = pkg.loadConfig({ argv: ['--host', '127.0.0.1', '--port', '0'], env: { MAX_MESSAGE_SIZE: '1234' } });
    assert.equal(config.maxMessageSize, 1234);
    assert.throws(() => pkg.loadConfig({ env: { PORT: 'nope' } }), (e: unknown) => e instanceof pkg.ConfigError && /PORT/.test(e.message));

    const lines: string[] = [];
    const server = await pkg.startServer({ config, logger: pino({ level: 'info' }, { write: (line: string) => lines.push(line) }) });
    stop.push(() => server.close());
    assert.match(server.url, /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.ok(lines.map((l) => JSON.parse(l) as LogLine).some((l) => l.msg === 'listening'));

    const health = await fetch(`${server.url}/healthz`);
    assert.equal(health.status, 200);
    assert.equal(((await health.json()) as { status: string }).status, 'ok');
    const sharer = await connect(server.url);
    const joiner = await connect(server.url);
    await request(sharer, 'share', 'from-code');
    const launched = waitFor(sharer, 'launchResponse');
    await request(joiner, 'launch', 'from-code', 'u', 'hello');
    assert.deepEqual(await launched, ['u', 'hello']);
    assert.equal((await requestLoose(joiner, 'launch', 'from-code', 'u', 'x'.repeat(2000))).error?.code, 'too-large');
    await server.close();
    await assert.rejects(fetch(`${server.url}/healthz`));
  });

  it('importing the package starts nothing', async () => {
    const proc = spawnCli([], {}, { command: [process.execPath, '--input-type=module', '-e', "await import('sigserve'); console.log('imported')"] });
    const { code } = await proc.exit();
    assert.equal(code, 0, proc.stderr());
    assert.equal(proc.stdout().trim(), 'imported');
  });
});
