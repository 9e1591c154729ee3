/**
 * Soak test: steady churn of thousands of socket.io clients against one
 * server on 127.0.0.1, bounded in time, reporting the server's memory (heap
 * after a forced GC, RSS), open handles and file descriptors, and its
 * /healthz counts at regular intervals. They must stay flat, and return to
 * the baseline once the clients are gone. The run is a warm-up (a quarter
 * of --duration), an idle baseline, --duration of churn, and an idle end:
 * about 1.25 x --duration + 25 s in all.
 *
 *   node --import tsx scripts/soak.ts [--duration 120] [--sessions 150] [--joiners 4] [--interval 10]
 *
 * The server runs in a child process (started by this script, stopped by
 * PID at the end) so the figures are the server's alone. Each session is a
 * sharer with a minted name and a few joiners that trade an offer, an answer
 * and trickled candidates, then leave; some sessions lose their sharer
 * midway, some shares simply expire, a tenth of the clients use
 * long-polling. Client addresses vary through X-Forwarded-For from the
 * loopback "proxy" (header values only: every byte stays on 127.0.0.1), so
 * per-address state churns too. Exits 1 when the heap or the handles grew.
 * @module
 */
import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readdirSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { io, type Socket } from 'socket.io-client';

interface Sample {
  heapUsed: number;
  rss: number;
  handles: number;
  fds: number;
}

// ---------------------------------------------------------------- server side

async function serve(): Promise<void> {
  const { loadConfig } = await import('../src/server/config.js');
  const { startServer } = await import('../src/server/server.js');
  const { pino } = await import('pino');
  const config = loadConfig({
    overrides: { port: 0, host: '127.0.0.1', trustedProxies: 'loopback', logLevel: 'warn' },
  });
  const server = await startServer({ config, logger: pino({ level: 'warn' }) });
  const gc = (globalThis as { gc?: () => void }).gc;
  process.on('message', (message: string) => {
    if (message === 'sample') {
      gc?.();
      const memory = process.memoryUsage();
      const sample: Sample = {
        heapUsed: memory.heapUsed,
        rss: memory.rss,
        handles: process.getActiveResourcesInfo().length,
        fds: readdirSync('/proc/self/fd').length,
      };
      process.send!(sample);
    } else if (message === 'stop') {
      void server.close().then(() => process.exit(0));
    }
  });
  process.send!({ url: server.url });
}

// ---------------------------------------------------------------- load side

const SDP = `v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\n${'a=candidate-and-codec-lines '.repeat(100)}`;

const stats = { clients: 0, sessions: 0, failures: 0, sharerLost: 0, expired: 0, polling: 0 };
let addressSeq = 0;
const nextAddress = (): string => {
  const n = addressSeq++ % 60_000;
  return `198.18.${Math.floor(n / 250)}.${(n % 250) + 1}`;
};

function open(url: string, address: string): Promise<Socket> {
  const polling = stats.clients % 10 === 0;
  if (polling) stats.polling++;
  stats.clients++;
  const socket = io(url, {
    transports: polling ? ['polling'] : ['websocket'],
    forceNew: true,
    reconnection: false,
    timeout: 10_000,
    extraHeaders: { 'x-forwarded-for': address },
  });
  return new Promise((resolve, reject) => {
    socket.once('connect', () => resolve(socket));
    socket.once('connect_error', (error) => {
      socket.close();
      reject(error);
    });
  });
}

function next<T extends unknown[]>(socket: Socket, event: string, ms = 10_000): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ${event} within ${ms} ms`)), ms);
    socket.once(event, (...args: unknown[]) => {
      clearTimeout(timer);
      resolve(args as T);
    });
  });
}

async function session(url: string, joinerCount: number, kind: number): Promise<void> {
  const sockets: Socket[] = [];
  try {
    const sharer = await open(url, nextAddress());
    sockets.push(sharer);
    if (kind % 10 === 9) {
      // A share that simply runs out.
      await sharer.timeout(10_000).emitWithAck('share', null, { ttl: 500 });
      await next(sharer, 'shareExpired');
      stats.expired++;
      return;
    }
    const granted = (await sharer.timeout(10_000).emitWithAck('share', null, { ttl: 60_000 })) as { ok: boolean; name: string };
    if (!granted.ok) throw new Error('share refused');
    const name = granted.name;
    const loseSharer = kind % 10 === 8;
    sharer.on('launchResponse', (uid: string, message: { type: string }) => {
      if (message.type !== 'offer') return;
      if (loseSharer) {
        sharer.disconnect();
        return;
      }
      sharer.emit('answer', name, uid, { type: 'answer', sdp: SDP });
      for (let c = 0; c < 3; c++) sharer.emit('answer', name, uid, { type: 'candidate', candidate: `candidate:${c} 1 udp 2122260223 127.0.0.1 ${50000 + c} typ host` });
    });
    await Promise.all(
      Array.from({ length: joinerCount }, async (_, k) => {
        const joiner = await open(url, nextAddress());
        sockets.push(joiner);
        const uid = `u${k}`;
        const answered = loseSharer ? next(joiner, 'signalingError') : next(joiner, 'answerResponse');
        joiner.emit('launch', name, uid, { type: 'offer', sdp: SDP });
        for (let c = 0; c < 5; c++) joiner.emit('launch', name, uid, { type: 'candidate', candidate: `candidate:${c} 1 udp 2122260223 127.0.0.1 ${40000 + c} typ host` });
        await answered;
      }),
    );
    if (loseSharer) stats.sharerLost++;
    stats.sessions++;
  } catch {
    stats.failures++;
  } finally {
    for (const socket of sockets) socket.disconnect();
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      serve: { type: 'boolean', default: false },
      duration: { type: 'string', default: '120' },
      sessions: { type: 'string', default: '150' },
      joiners: { type: 'string', default: '4' },
      interval: { type: 'string', default: '10' },
    },
  });
  if (values.serve) return serve();
  // Bounded whatever is asked: at most 30 minutes.
  const duration = Math.min(1800, Number(values.duration)) * 1000;
  const concurrency = Number(values.sessions);
  const joiners = Number(values.joiners);
  const interval = Number(values.interval) * 1000;

  const child: ChildProcess = fork(new URL(import.meta.url).pathname, ['--serve'], {
    execArgv: ['--expose-gc', '--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const [ready] = (await once(child, 'message')) as [{ url: string }];
  const url = ready.url;
  const sample = async (): Promise<Sample> => {
    child.send('sample');
    return ((await once(child, 'message')) as [Sample])[0];
  };
  const healthz = async (): Promise<{ sockets: number; shares: number; routes: number }> =>
    (await (await fetch(`${url}/healthz`)).json()) as { sockets: number; shares: number; routes: number };

  const rows: string[] = [];
  const mb = (n: number): string => (n / 1024 / 1024).toFixed(1);
  const started = Date.now();
  const record = async (label: string): Promise<Sample> => {
    const s = await sample();
    const h = await healthz();
    const row = `| ${label} | ${stats.clients} | ${stats.sessions} | ${stats.failures} | ${h.sockets} | ${h.shares} | ${h.routes} | ${mb(s.heapUsed)} | ${mb(s.rss)} | ${s.handles} | ${s.fds} |`;
    rows.push(row);
    process.stdout.write(`${row}\n`);
    return s;
  };
  process.stdout.write(
    `soak: ${duration / 1000} s, ${concurrency} sessions at once, 1 sharer + ${joiners} joiners each, against ${url}\n\n` +
      '| t (s) | clients | sessions | failures | sockets | shares | routes | heap MB | RSS MB | handles | fds |\n' +
      '|---|---|---|---|---|---|---|---|---|---|---|\n',
  );
  const elapsed = (): string => String(Math.round((Date.now() - started) / 1000));
  await record(`${elapsed()} (idle, cold)`);

  let kind = 0;
  /** Churns for `ms`, sampling every interval; returns the samples. */
  const churn = async (ms: number): Promise<Sample[]> => {
    const until = Date.now() + ms;
    let running = true;
    const worker = async (): Promise<void> => {
      while (running) await session(url, joiners, kind++);
    };
    const workers = Array.from({ length: concurrency }, () => worker());
    const taken: Sample[] = [];
    while (Date.now() < until) {
      await new Promise((r) => setTimeout(r, Math.max(0, Math.min(interval, until - Date.now()))));
      taken.push(await record(elapsed()));
    }
    running = false;
    await Promise.all(workers);
    return taken;
  };
  /** Waits until the clients are gone and the per-address windows (10 s) have passed. */
  const quiesce = async (label: string): Promise<Sample> => {
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline && (await healthz()).sockets > 0) await new Promise((r) => setTimeout(r, 200));
    await new Promise((r) => setTimeout(r, 11_000));
    return record(`${elapsed()} (${label})`);
  };

  // Warm-up first: the first minutes grow the heap with compiled code and
  // pools once; the baseline is the idle server after it.
  await churn(Math.max(10_000, duration / 4));
  const baseline = await quiesce('idle, warm: baseline');
  const samples = await churn(duration);
  const end = await quiesce('idle, end');

  // Flat: after warm-up, the heap after GC stays within a band, and once
  // idle again the handles and descriptors are back where they started.
  const heaps = samples.map((s) => s.heapUsed);
  const spread = heaps.length ? Math.max(...heaps) - Math.min(...heaps) : 0;
  const growth = end.heapUsed - baseline.heapUsed;
  const verdicts = [
    [`heap after GC varies by ${mb(spread)} MB under steady load`, spread < 32 * 1024 * 1024],
    [`heap after GC ends ${mb(growth)} MB from the warm idle baseline`, growth < 4 * 1024 * 1024],
    [`handles end at ${end.handles} (start ${baseline.handles})`, end.handles <= baseline.handles + 2],
    [`fds end at ${end.fds} (start ${baseline.fds})`, end.fds <= baseline.fds + 2],
    [`failed sessions: ${stats.failures} of ${stats.sessions + stats.failures}`, stats.failures <= (stats.sessions + stats.failures) / 100],
  ] as const;
  process.stdout.write(
    `\nclients ${stats.clients} (${stats.polling} long-polling), sessions ${stats.sessions} (${stats.sharerLost} lost their sharer), expired shares ${stats.expired}\n`,
  );
  for (const [text, ok] of verdicts) process.stdout.write(`${ok ? 'ok  ' : 'FAIL'} ${text}\n`);
  child.send('stop');
  await Promise.race([once(child, 'exit'), new Promise((r) => setTimeout(r, 10_000))]);
  if (child.exitCode === null) child.kill('SIGKILL');
  process.exitCode = verdicts.every(([, ok]) => ok) ? 0 : 1;
}

main().catch((error: unknown) => {
  process.stderr.write(`soak: ${error instanceof Error ? error.stack : String(error)}\n`);
  process.exit(1);
});
