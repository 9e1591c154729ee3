/**
 * The Registry contract: one list of cases that every implementation runs
 * (in the manner of hono's common.case.test.ts), so the in-memory and the
 * Redis registries cannot drift apart. An implementation may skip a case
 * only by naming it in `skipped` with the reason.
 *
 * A harness hands out two registries that share state (two nodes of one
 * cluster; the same instance twice in memory), so cases can also check
 * what one node sees of the other's writes and that races between nodes
 * are settled atomically.
 * @module
 */
import assert from 'node:assert/strict';
import { after, afterEach, before, describe, it } from 'node:test';
import type { Registry } from '../../src/core/registry.js';
import type { ShareTerms } from '../../src/core/types.js';

export interface RegistryHarness {
  /** Two views of one shared registry, as two nodes see it. */
  a: Registry;
  b: Registry;
  /** Makes socket ids as the implementation expects them of node `a` or `b`. */
  id(node: 'a' | 'b', local: string): string;
  /** Removes everything the case left (between cases). */
  reset(): Promise<void>;
  close(): Promise<void>;
}

const HOUR = 3_600_000;

export function registryContract(label: string, makeHarness: () => Promise<RegistryHarness>, skipped: Record<string, string> = {}): void {
  describe(`Registry contract (${label})`, () => {
    let h: RegistryHarness;
    let now: number;
    const terms = (extra: Partial<ShareTerms> = {}): ShareTerms => ({ expiresAt: now + HOUR, maxJoins: undefined, ...extra });
    const sharer = (local: string): string => h.id('a', local);
    const joiner = (local: string): string => h.id('b', local);

    before(async () => {
      h = await makeHarness();
    });
    afterEach(async () => {
      await h.reset();
    });
    after(async () => {
      await h.close();
    });

    const cases: Record<string, () => Promise<void>> = {
      'routes a joiner to the only sharer, and records the route': async () => {
        await h.a.addShare('n', sharer('s1'), terms());
        assert.deepEqual(await h.b.route('n', 'u', joiner('j1'), now), { ok: true, sharer: sharer('s1'), fresh: true });
        assert.deepEqual(await h.a.lookupRoute('n', 'u'), { sharer: sharer('s1'), joiner: joiner('j1') });
      },
      'reuses the route of the same joiner and uid': async () => {
        await h.a.addShare('n', sharer('s1'), terms());
        await h.a.addShare('n', sharer('s2'), terms());
        const first = await h.b.route('n', 'u', joiner('j1'), now);
        assert.ok(first.ok);
        for (let i = 0; i < 10; i++) {
          assert.deepEqual(await h.b.route('n', 'u', joiner('j1'), now), { ok: true, sharer: first.sharer, fresh: false });
        }
      },
      'refuses a uid another joiner holds in the same share': async () => {
        await h.a.addShare('n', sharer('s1'), terms());
        assert.ok((await h.b.route('n', 'u', joiner('j1'), now)).ok);
        assert.deepEqual(await h.b.route('n', 'u', joiner('j2'), now), { ok: false, code: 'uid-taken' });
        assert.deepEqual(await h.a.route('n', 'u', h.id('a', 'j3'), now), { ok: false, code: 'uid-taken' });
      },
      'keeps uids of different names apart': async () => {
        await h.a.addShare('n1', sharer('s1'), terms());
        await h.a.addShare('n2', sharer('s1'), terms());
        assert.ok((await h.b.route('n1', 'u', joiner('j1'), now)).ok);
        assert.ok((await h.b.route('n2', 'u', joiner('j2'), now)).ok);
      },
      'answers no-sharer for a name nobody shares': async () => {
        assert.deepEqual(await h.b.route('nobody', 'u', joiner('j1'), now), { ok: false, code: 'no-sharer' });
        assert.equal(await h.b.lookupRoute('nobody', 'u'), undefined);
      },
      'skips expired sharers, and answers no-sharer when all expired': async () => {
        await h.a.addShare('n', sharer('old'), terms({ expiresAt: now + 10 }));
        await h.a.addShare('n', sharer('new'), terms());
        for (let i = 0; i < 10; i++) {
          const r = await h.b.route('n', `u${i}`, joiner(`j${i}`), now + 10);
          assert.ok(r.ok && r.sharer === sharer('new'));
        }
        await h.a.removeShare('n', sharer('new'));
        assert.deepEqual(await h.b.route('n', 'late', joiner('late'), now + 10), { ok: false, code: 'no-sharer' });
      },
      'spreads first routes over every live sharer at random': async () => {
        const ids = ['s1', 's2', 's3'].map(sharer);
        for (const s of ids) await h.a.addShare('n', s, terms());
        const seen = new Map<string, number>();
        for (let i = 0; i < 150; i++) {
          const r = await h.b.route('n', `u${i}`, joiner(`j${i}`), now);
          assert.ok(r.ok);
          seen.set(r.sharer, (seen.get(r.sharer) ?? 0) + 1);
        }
        assert.deepEqual([...seen.keys()].sort(), [...ids].sort());
        // 150 uniform picks over 3: each gets well over 20 unless the pick is biased.
        for (const n of seen.values()) assert.ok(n > 20, `uneven spread ${JSON.stringify([...seen])}`);
      },
      'counts joins against maxJoins per sharer, and answers share-full': async () => {
        await h.a.addShare('n', sharer('s1'), terms({ maxJoins: 1 }));
        await h.a.addShare('n', sharer('s2'), terms({ maxJoins: 2 }));
        const hits = [];
        for (let i = 0; i < 3; i++) {
          const r = await h.b.route('n', `u${i}`, joiner(`j${i}`), now);
          assert.ok(r.ok);
          hits.push(r.sharer);
        }
        assert.deepEqual(hits.sort(), [sharer('s1'), sharer('s2'), sharer('s2')].sort());
        assert.deepEqual(await h.b.route('n', 'u9', joiner('j9'), now), { ok: false, code: 'share-full' });
        // The route of an admitted joiner still works when the share is full.
        assert.equal((await h.b.route('n', 'u0', joiner('j0'), now)).ok, true);
      },
      'keeps the join count when a share is renewed, and a removed route does not free a place': async () => {
        await h.a.addShare('n', sharer('s1'), terms({ maxJoins: 1 }));
        assert.ok((await h.b.route('n', 'u1', joiner('j1'), now)).ok);
        await h.b.removeRoute('n', 'u1', joiner('j1'));
        await h.a.addShare('n', sharer('s1'), terms({ maxJoins: 1, expiresAt: now + 2 * HOUR }));
        assert.deepEqual(await h.b.route('n', 'u2', joiner('j2'), now), { ok: false, code: 'share-full' });
        await h.a.addShare('n', sharer('s1'), terms({ maxJoins: 2 }));
        assert.ok((await h.b.route('n', 'u2', joiner('j2'), now)).ok);
      },
      'admits exactly maxJoins when joiners of two nodes race': async () => {
        await h.a.addShare('n', sharer('s1'), terms({ maxJoins: 7 }));
        const outcomes = await Promise.all(
          Array.from({ length: 40 }, (_, i) => (i % 2 ? h.a : h.b).route('n', `u${i}`, h.id(i % 2 ? 'a' : 'b', `j${i}`), now)),
        );
        assert.equal(outcomes.filter((o) => o.ok).length, 7);
        assert.ok(outcomes.every((o) => o.ok || o.code === 'share-full'));
      },
      'settles routes and removals issued in one turn in the order issued': async () => {
        await h.a.addShare('n', sharer('s1'), terms());
        // Issued without waiting in between, as a busy node's core does
        // (the Redis registry sends a turn's routes in batches).
        const routes = Array.from({ length: 300 }, (_, i) => h.b.route('n', `u${i >> 1}`, joiner(`j${i}`), now));
        const removed = h.b.removeRoute('n', 'u149', joiner('j298'));
        const again = h.b.route('n', 'u149', joiner('j299'), now);
        const outcomes = await Promise.all(routes);
        await removed;
        outcomes.forEach((o, i) => {
          if (i % 2 === 0) assert.deepEqual(o, { ok: true, sharer: sharer('s1'), fresh: true }, `route ${i}`);
          else assert.deepEqual(o, { ok: false, code: 'uid-taken' }, `route ${i}`);
        });
        assert.deepEqual(await again, { ok: true, sharer: sharer('s1'), fresh: true });
        assert.deepEqual(await h.a.lookupRoute('n', 'u0'), { sharer: sharer('s1'), joiner: joiner('j0') });
        assert.deepEqual(await h.a.lookupRoute('n', 'u149'), { sharer: sharer('s1'), joiner: joiner('j299') });
      },
      'gives one uid to exactly one of several racing joiners': async () => {
        await h.a.addShare('n', sharer('s1'), terms());
        const outcomes = await Promise.all(
          Array.from({ length: 20 }, (_, i) => (i % 2 ? h.a : h.b).route('n', 'same', h.id(i % 2 ? 'a' : 'b', `j${i}`), now)),
        );
        assert.equal(outcomes.filter((o) => o.ok).length, 1);
        assert.equal(outcomes.filter((o) => !o.ok && o.code === 'uid-taken').length, 19);
      },
      'stops routing to a removed sharer and keeps routes already made': async () => {
        await h.a.addShare('n', sharer('s1'), terms());
        assert.ok((await h.b.route('n', 'u1', joiner('j1'), now)).ok);
        await h.a.removeShare('n', sharer('s1'));
        assert.deepEqual(await h.b.route('n', 'u2', joiner('j2'), now), { ok: false, code: 'no-sharer' });
        assert.deepEqual(await h.b.lookupRoute('n', 'u1'), { sharer: sharer('s1'), joiner: joiner('j1') });
        assert.deepEqual(await h.b.route('n', 'u1', joiner('j1'), now), { ok: true, sharer: sharer('s1'), fresh: false });
      },
      'removes a route only for the joiner that holds it, and frees its uid': async () => {
        await h.a.addShare('n', sharer('s1'), terms());
        assert.ok((await h.b.route('n', 'u', joiner('j1'), now)).ok);
        await h.b.removeRoute('n', 'u', joiner('intruder'));
        assert.deepEqual(await h.a.lookupRoute('n', 'u'), { sharer: sharer('s1'), joiner: joiner('j1') });
        await h.b.removeRoute('n', 'u', joiner('j1'));
        assert.equal(await h.a.lookupRoute('n', 'u'), undefined);
        assert.deepEqual(await h.b.route('n', 'u', joiner('j2'), now), { ok: true, sharer: sharer('s1'), fresh: true });
      },
      'ignores removals of what is not there': async () => {
        await h.a.removeShare('ghost', sharer('s1'));
        await h.b.removeRoute('ghost', 'u', joiner('j1'));
        assert.deepEqual(await h.a.counts(), { shares: 0, routes: 0 });
      },
      'counts shares and routes of the whole registry, back to zero': async () => {
        await h.a.addShare('n1', sharer('s1'), terms());
        await h.a.addShare('n1', sharer('s1'), terms());
        await h.a.addShare('n2', sharer('s1'), terms());
        await h.b.addShare('n1', joiner('s2'), terms());
        assert.ok((await h.b.route('n1', 'u1', joiner('j1'), now)).ok);
        assert.ok((await h.a.route('n2', 'u1', h.id('a', 'j2'), now)).ok);
        for (const r of [h.a, h.b]) assert.deepEqual(await r.counts(), { shares: 3, routes: 2 });
        await h.a.removeShare('n1', sharer('s1'));
        await h.a.removeShare('n2', sharer('s1'));
        await h.b.removeShare('n1', joiner('s2'));
        await h.b.removeRoute('n1', 'u1', joiner('j1'));
        await h.a.removeRoute('n2', 'u1', h.id('a', 'j2'));
        for (const r of [h.a, h.b]) assert.deepEqual(await r.counts(), { shares: 0, routes: 0 });
      },
      'removes the route given to evict when it makes or reuses one of the same joiner': async () => {
        await h.a.addShare('n', sharer('s1'), terms());
        await h.a.addShare('m', sharer('s1'), terms());
        const j = joiner('j1');
        assert.ok((await h.b.route('m', 'u1', j, now)).ok);
        assert.ok((await h.b.route('n', 'u1', j, now)).ok);
        assert.deepEqual(await h.b.route('n', 'u2', j, now, { name: 'm', uid: 'u1' }), { ok: true, sharer: sharer('s1'), fresh: true, evicted: true });
        assert.equal(await h.a.lookupRoute('m', 'u1'), undefined);
        assert.deepEqual(await h.a.counts(), { shares: 2, routes: 2 });
        assert.deepEqual(await h.b.route('n', 'u2', j, now, { name: 'n', uid: 'u1' }), { ok: true, sharer: sharer('s1'), fresh: false, evicted: true });
        assert.equal(await h.a.lookupRoute('n', 'u1'), undefined);
        assert.deepEqual(await h.a.counts(), { shares: 2, routes: 1 });
        // The evicted uids are free for anyone.
        assert.ok((await h.b.route('m', 'u1', joiner('j2'), now)).ok);
        assert.ok((await h.a.route('n', 'u1', h.id('a', 'j3'), now)).ok);
      },
      'evicts nothing when the route is refused, nor a route another joiner holds': async () => {
        await h.a.addShare('n', sharer('s1'), terms({ maxJoins: 2 }));
        const j = joiner('j1');
        const mine = { sharer: sharer('s1'), joiner: j };
        assert.ok((await h.b.route('n', 'u1', j, now)).ok);
        assert.ok((await h.b.route('n', 'other', joiner('j2'), now)).ok);
        const evict = { name: 'n', uid: 'u1' };
        assert.deepEqual(await h.b.route('n', 'u2', j, now, evict), { ok: false, code: 'share-full' });
        assert.deepEqual(await h.b.route('n', 'other', j, now, evict), { ok: false, code: 'uid-taken' });
        assert.deepEqual(await h.b.route('nobody', 'u', j, now, evict), { ok: false, code: 'no-sharer' });
        assert.deepEqual(await h.a.lookupRoute('n', 'u1'), mine);
        assert.deepEqual(await h.b.route('n', 'u1', j, now, { name: 'n', uid: 'other' }), { ok: true, sharer: sharer('s1'), fresh: false, evicted: true });
        assert.deepEqual(await h.a.lookupRoute('n', 'other'), { sharer: sharer('s1'), joiner: joiner('j2') });
        // Nor the route being made, should a caller name it.
        assert.deepEqual(await h.b.route('n', 'u1', j, now, evict), { ok: true, sharer: sharer('s1'), fresh: false, evicted: true });
        assert.deepEqual(await h.a.lookupRoute('n', 'u1'), mine);
        assert.deepEqual(await h.a.counts(), { shares: 1, routes: 2 });
      },
      'treats odd names and uids as plain strings': async () => {
        const odd = ['__proto__', 'constructor', 'toString', 'a:b|c#d e', '3:abc', '日本語🙂', ' ', '*', 'x'.repeat(256)];
        for (const [i, name] of odd.entries()) {
          await h.a.addShare(name, sharer(`s${i}`), terms({ maxJoins: 1 }));
          const uid = odd[(i + 1) % odd.length]!;
          assert.deepEqual(await h.b.route(name, uid, joiner(`j${i}`), now), { ok: true, sharer: sharer(`s${i}`), fresh: true });
          assert.deepEqual(await h.a.lookupRoute(name, uid), { sharer: sharer(`s${i}`), joiner: joiner(`j${i}`) });
          assert.deepEqual(await h.b.route(name, `${uid}-2`, joiner(`k${i}`), now), { ok: false, code: 'share-full' });
        }
        assert.deepEqual(await h.a.counts(), { shares: odd.length, routes: odd.length });
        for (const [i, name] of odd.entries()) {
          await h.a.removeShare(name, sharer(`s${i}`));
          await h.b.removeRoute(name, odd[(i + 1) % odd.length]!, joiner(`j${i}`));
        }
        assert.deepEqual(await h.a.counts(), { shares: 0, routes: 0 });
      },
    };

    for (const [name, run] of Object.entries(cases)) {
      if (Object.hasOwn(skipped, name)) {
        it.skip(`${name} (skipped: ${skipped[name]})`);
        continue;
      }
      it(name, async () => {
        now = Date.now();
        await run();
      });
    }
  });
}
