/**
 * The deployment users run: scripts/cluster.sh (redis-server, two nodes and
 * Debian's nginx with deploy/nginx/sigserve.conf, all on loopback), and
 * clients with socket.io's default transports (long-polling, then the
 * websocket upgrade) going through nginx. Clients pick their source
 * address on 127.0.0.0/8 so that nginx's sticky hash sends the sharer and
 * the joiner to different nodes.
 * @module
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { Agent, get } from 'node:http';
import { createInterface } from 'node:readline';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { connect, disconnectAll, eventually, request, waitFor, type TestSocket } from '../support/util.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

interface Running {
  script: ChildProcess;
  nginx: string;
  nodes: string[];
  exited: Promise<number | null>;
}

function requireNginx(): void {
  const found = spawnSync('bash', ['-c', 'command -v nginx || test -x /usr/sbin/nginx'], { encoding: 'utf8' });
  if (found.status !== 0) throw new Error('nginx is not installed; run: apt-get install -y nginx (or: bash scripts/install-test-deps.sh)');
}

async function startScript(): Promise<Running> {
  const script = spawn('bash', ['scripts/cluster.sh', '--nodes', '2', '--port', '0', '--duration', '600'], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = new Promise<number | null>((resolve) => script.once('exit', (code) => resolve(code)));
  let stderr = '';
  script.stderr!.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
  const nodes: string[] = [];
  let nginx = '';
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`cluster.sh not ready in 60 s: ${stderr}`)), 60_000);
    void exited.then((code) => reject(new Error(`cluster.sh exited (${code}): ${stderr}`)));
    createInterface({ input: script.stdout! }).on('line', (line) => {
      const [kind, ...rest] = line.split(' ');
      if (kind === 'node') nodes[Number(rest[0])] = rest[1]!;
      if (kind === 'nginx') nginx = rest[0]!;
      if (kind === 'ready:') {
        clearTimeout(timer);
        resolve();
      }
    });
  });
  return { script, nginx, nodes, exited };
}

function getJson(url: string, localAddress: string): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    get(url, { localAddress, agent: false }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => {
        try {
          resolve(JSON.parse(body) as Record<string, unknown>);
        } catch (error) {
          reject(error);
        }
      });
    }).on('error', reject);
  });
}

/** A client with the default transports from `localAddress`, through nginx. */
function viaNginx(url: string, localAddress: string, transports = ['polling', 'websocket']): Promise<TestSocket> {
  // Polling goes through the agent, the websocket through ws's own option.
  const agent = new Agent({ localAddress } as ConstructorParameters<typeof Agent>[0]);
  return connect(url, { transports, agent: agent as never, localAddress } as Parameters<typeof connect>[1]);
}

describe('cluster behind nginx (scripts/cluster.sh, deploy/nginx/sigserve.conf)', () => {
  let running: Running | undefined;
  before(async () => {
    requireNginx();
    running = await startScript();
  });
  after(async () => {
    disconnectAll();
    if (running && running.script.exitCode === null) {
      process.kill(running.script.pid!, 'SIGTERM');
      assert.equal(await running.exited, 0);
    }
  });

  it('relays through nginx with polling then websocket, sharer and joiner on different nodes', async () => {
    const { nginx, nodes } = running!;
    const nodeIds = await Promise.all(nodes.map(async (u) => ((await (await fetch(`${u}/healthz`)).json()) as { cluster: { node: string } }).cluster.node));
    // nginx hashes the client address: find one source address per node.
    const addressOf = new Map<string, string>();
    for (let i = 1; i < 64 && addressOf.size < nodeIds.length; i++) {
      const address = `127.0.0.${i}`;
      const body = (await getJson(`${nginx}/healthz`, address)) as { cluster: { node: string } };
      if (!addressOf.has(body.cluster.node)) addressOf.set(body.cluster.node, address);
    }
    assert.equal(addressOf.size, 2, 'no two source addresses hash to different nodes');
    const sharer = await viaNginx(nginx, addressOf.get(nodeIds[0]!)!);
    const joiner = await viaNginx(nginx, addressOf.get(nodeIds[1]!)!);
    for (const s of [sharer, joiner]) {
      await eventually(() => s.io.engine.transport.name === 'websocket', 10_000, 'upgrade to websocket');
    }
    const counts = await Promise.all(nodes.map(async (u) => ((await (await fetch(`${u}/healthz`)).json()) as { sockets: number }).sockets));
    assert.deepEqual(counts, [1, 1]);

    assert.equal((await request<{ ok: boolean }>(sharer, 'share', 'through-nginx')).ok, true);
    const launched = waitFor<[string, unknown]>(sharer, 'launchResponse', 5000);
    assert.deepEqual(await request(joiner, 'launch', 'through-nginx', 'j', { sdp: 'offer' }), { ok: true, joinerUID: 'j' });
    assert.deepEqual(await launched, ['j', { sdp: 'offer' }]);
    const answered = waitFor<[unknown]>(joiner, 'answerResponse', 5000);
    await request(sharer, 'answer', 'through-nginx', 'j', { sdp: 'answer' });
    assert.deepEqual(await answered, [{ sdp: 'answer' }]);

    // A client that never upgrades needs every poll to stick to one node.
    const poller = await viaNginx(nginx, addressOf.get(nodeIds[1]!)!, ['polling']);
    for (let i = 0; i < 5; i++) {
      const offer = waitFor<[string, unknown]>(sharer, 'launchResponse', 5000);
      assert.deepEqual(await request(poller, 'launch', 'through-nginx', 'p', `candidate-${i}`), { ok: true, joinerUID: 'p' });
      assert.deepEqual(await offer, ['p', `candidate-${i}`]);
      const back = waitFor<[unknown]>(poller, 'answerResponse', 5000);
      await request(sharer, 'answer', 'through-nginx', 'p', `answer-${i}`);
      assert.deepEqual(await back, [`answer-${i}`]);
    }
    assert.equal(poller.io.engine.transport.name, 'polling');
  });
});
