/**
 * What the route state of a looping joiner costs, without sockets: drives
 * the core and the in-memory registry of a build as the 500-pair duel does
 * (one share per sharer, a fresh uid per join, so each joiner holds the 64
 * routes of the default cap and every join drops its oldest), and prints
 * the heap per route (with the registry's copy and the uid string) and the
 * time per handshake.
 *
 *   npx tsx bench/route-state.ts [DIST ...]   (default: this checkout's dist/)
 *
 * Several builds are measured one after the other (e.g. `dist /tmp/other/dist`),
 * each in a process of its own; run it pinned (`taskset -c 1`) for steadier times.
 * Used in bench/RESULTS.md, phase 11.
 * @module
 */
import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { runInNewContext } from 'node:vm';
import { setFlagsFromString } from 'node:v8';

const PAIRS = 500;
const CAP = 64;

async function measure(dist: string): Promise<void> {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  const at = (path: string): string => pathToFileURL(resolve(dist, path)).href;
  const { SignalingCore } = await import(at('core/signaling-core.js'));
  const { InMemoryRegistry } = await import(at('cluster/in-memory-registry.js'));
  const { LocalDelivery } = await import(at('cluster/local-delivery.js'));
  let relayed = 0;
  const sink = {
    launchResponse: () => relayed++,
    answerResponse: () => relayed++,
    shareExpired: () => {},
    sharerGone: () => {},
  };
  const clock = { now: () => 0, schedule: () => ({ cancel: () => {} }) };
  const core = new SignalingCore({
    registry: new InMemoryRegistry(),
    delivery: new LocalDelivery(),
    sink,
    clock,
    limits: { defaultTtl: 1e12, maxTtl: 1e12, maxSharesPerSocket: 16, maxRoutesPerSocket: CAP },
  });
  const names: string[] = [];
  for (let p = 0; p < PAIRS; p++) {
    core.attach(`s${p}`);
    core.attach(`j${p}`);
    names.push((await core.share(`s${p}`, undefined, {})).name);
  }
  let joins = 0;
  // Beside an unrelated heap, as a server's sockets and buffers are, touched a little per join.
  const ballast = Array.from({ length: 200_000 }, (_, i) => ({ i, s: `x${i}` }));
  const round = (): void => {
    for (let p = 0; p < PAIRS; p++) {
      const uid = `uid-${(joins++).toString(36)}-abcdefgh`;
      core.relayLaunch(`j${p}`, names[p], uid, 'offer');
      core.relayAnswer(`s${p}`, names[p], uid, 'answer');
      ballast[(joins * 7919) % ballast.length]!.i++;
    }
  };
  round();
  gc();
  const before = process.memoryUsage().heapUsed;
  for (let i = 1; i < CAP; i++) round();
  gc();
  const perRoute = (process.memoryUsage().heapUsed - before) / ((CAP - 1) * PAIRS);
  for (let i = 0; i < 200; i++) round();
  const rounds = 2000;
  const start = process.hrtime.bigint();
  for (let i = 0; i < rounds; i++) round();
  const ns = Number(process.hrtime.bigint() - start) / (rounds * PAIRS);
  if (relayed !== 2 * joins) throw new Error(`relayed ${relayed} messages for ${joins} joins`);
  console.log(`${dist}: ${perRoute.toFixed(0)} bytes per route, ${(ns / 1000).toFixed(2)} µs per handshake (${PAIRS} pairs, ${CAP} routes each)`);
}

const self = fileURLToPath(import.meta.url);
if (process.env.ROUTE_STATE_DIST) {
  await measure(process.env.ROUTE_STATE_DIST);
} else {
  const dists = process.argv.slice(2);
  for (const dist of dists.length > 0 ? dists : [resolve(self, '../../dist')]) {
    const run = spawnSync(process.execPath, [...process.execArgv, self], {
      env: { ...process.env, ROUTE_STATE_DIST: resolve(dist) },
      stdio: 'inherit',
    });
    if (run.status !== 0) process.exitCode = 1;
  }
}
