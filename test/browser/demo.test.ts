/**
 * Runs the Chromium scenario (demo-scenario.ts) inside a private network
 * namespace: `lo` up, a veth pair whose ends both stay inside it, one
 * holding 198.51.100.1 (a documentation address) and the default route
 * (Chromium gathers candidates only on the default route's interface), so
 * there is still no way out. Chromium gathers no ICE
 * candidates on 127.0.0.1, so two pages on one machine need such an address;
 * inside the namespace nothing can leave the machine.
 *
 * Without Chromium the test skips, except under CI=true, where it fails
 * with the command that installs it.
 * @module
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const CHROMIUM = process.env['CHROMIUM_PATH'] ?? '/usr/bin/chromium';
const root = fileURLToPath(new URL('../../', import.meta.url));
const ci = process.env['CI'] === 'true';

function missing(): string | undefined {
  if (!existsSync(CHROMIUM)) return `Chromium is missing at ${CHROMIUM}: install it with \`bash scripts/install-test-deps.sh\` (or \`apt-get install chromium\`)`;
  if (spawnSync('unshare', ['--version']).status !== 0) return 'unshare (util-linux) is missing: `apt-get install util-linux`';
  if (spawnSync('ip', ['-V']).status !== 0) return 'ip (iproute2) is missing: install it with `bash scripts/install-test-deps.sh` (or `apt-get install iproute2`)';
  return undefined;
}

const NAMESPACE_SETUP = [
  'set -e',
  'ip link set lo up',
  // A veth pair whose both ends stay in the namespace (some kernels lack the dummy driver).
  'ip link add sig0 type veth peer name sig1 || ip link add sig0 type dummy',
  'ip addr add 198.51.100.1/24 dev sig0',
  'ip link set sig0 up',
  'if ip link show sig1 >/dev/null 2>&1; then ip link set sig1 up; fi',
  // Chromium gathers candidates only on the interface of the default route.
  // This one ends at sig1, inside the namespace too: still no way out.
  'ip route add default dev sig0',
  'exec node --import tsx --test --test-reporter=tap --test-timeout=240000 test/browser/demo-scenario.ts',
].join('\n');

describe('demo in Chromium', () => {
  it('passes the browser scenario inside a private network namespace', async (t) => {
    const problem = missing();
    if (problem) {
      if (ci) assert.fail(problem);
      t.skip(problem);
      return;
    }
    // Root makes the namespace directly; anyone else through a user namespace.
    const unshare = process.getuid?.() === 0 ? ['-n'] : ['-r', '-n'];
    const env: NodeJS.ProcessEnv = { ...process.env, SIGSERVE_NETNS: '1', CHROMIUM_PATH: CHROMIUM };
    // The inner runner must report as a top-level run, not to this one.
    delete env['NODE_TEST_CONTEXT'];
    const child = spawn('unshare', [...unshare, '--', 'bash', '-c', NAMESPACE_SETUP], { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    for (const line of output.trimEnd().split('\n')) t.diagnostic(`chromium | ${line}`);
    assert.equal(code, 0, 'the browser scenario failed: see the chromium | lines above');
    assert.match(output, /# pass [1-9]/);
    assert.match(output, /# fail 0/);
  });
});
