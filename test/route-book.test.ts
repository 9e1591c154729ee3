import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { RouteBook, type HeldRoute, type RouteHolder } from '../src/core/route-book.js';
import { rng } from './support/rng.js';

const holder = (id: string): RouteHolder => ({
  id,
  joinerOldest: undefined,
  joinerNewest: undefined,
  joinerCount: 0,
  sharerOldest: undefined,
  sharerNewest: undefined,
  sharerCount: 0,
  sharerNames: undefined,
});

const joinerIds = (book: RouteBook, joiner: RouteHolder): string[] => {
  const out: string[] = [];
  book.forEachJoinerEnd(joiner, (route) => out.push(`${route.name}/${route.uid}`));
  return out;
};

describe('RouteBook', () => {
  it('keeps one record for both ends of a route whose joiner and sharer are both here', () => {
    const book = new RouteBook();
    const joiner = holder('j');
    const sharer = holder('s');
    const route = book.addJoinerEnd(joiner, 'n', 'u', 's');
    assert.equal(book.joinerEnd(joiner, 'n', 'u'), route);
    assert.equal(book.sharerEnd(sharer, 'n', 'u'), undefined);
    assert.equal(book.addSharerEnd(sharer, 'n', 'u', 'j'), route);
    assert.equal(book.sharerEnd(sharer, 'n', 'u'), route);
    assert.equal(book.records, 1);
    assert.deepEqual([joiner.joinerCount, sharer.sharerCount], [1, 1]);
    // The record stays while one end is held.
    book.dropJoinerEnd(route);
    assert.equal(book.joinerEnd(joiner, 'n', 'u'), undefined);
    assert.equal(book.sharerEnd(sharer, 'n', 'u'), route);
    assert.equal(book.records, 1);
    book.dropSharerEnd(route);
    assert.equal(book.records, 0);
    assert.deepEqual([joiner.joinerCount, sharer.sharerCount, sharer.sharerNames?.size], [0, 0, 0]);
  });

  it('a sharer whose joiner is elsewhere gets a record of its own; a second joiner of the same key too', () => {
    const book = new RouteBook();
    const sharer = holder('s');
    const remote = book.addSharerEnd(sharer, 'n', 'u', 'joiner-on-another-node');
    assert.equal(remote.joinerEnd, undefined);
    // While the first route's sharer end lingers, another joiner here routes the same key to another sharer.
    const joiner = holder('j2');
    const local = book.addJoinerEnd(joiner, 'n', 'u', 's2');
    assert.notEqual(local, remote);
    assert.equal(book.records, 2);
    assert.equal(book.joinerEnd(joiner, 'n', 'u'), local);
    assert.equal(book.sharerEnd(sharer, 'n', 'u'), remote);
    // The sharer s2 here joins the new joiner's record, not the lingering one.
    const s2 = holder('s2');
    assert.equal(book.addSharerEnd(s2, 'n', 'u', 'j2'), local);
    book.dropSharerEnd(remote);
    assert.equal(book.records, 1);
    assert.equal(book.sharerEnd(s2, 'n', 'u'), local);
    assert.equal(book.joinerEnd(joiner, 'n', 'u'), local);
  });

  it('tells apart names and uids that would concatenate alike', () => {
    const book = new RouteBook();
    const joiner = holder('j');
    const a = book.addJoinerEnd(joiner, 'au', '', 's');
    const b = book.addJoinerEnd(joiner, 'a', 'u', 's');
    assert.equal(book.joinerEnd(joiner, 'au', ''), a);
    assert.equal(book.joinerEnd(joiner, 'a', 'u'), b);
    assert.equal(book.joinerEnd(joiner, '', 'au'), undefined);
  });

  it("keeps a joiner's routes oldest first; dropping one keeps the others and their age", () => {
    const book = new RouteBook();
    const joiner = holder('j');
    const routes = [['a', 'u'], ['a', 'v'], ['b', 'u'], ['b', 'w']].map(([n, u]) => book.addJoinerEnd(joiner, n!, u!, 's'));
    assert.deepEqual(joinerIds(book, joiner), ['a/u', 'a/v', 'b/u', 'b/w']);
    assert.equal(joiner.joinerOldest, routes[0]);
    book.dropJoinerEnd(routes[0]!);
    assert.equal(book.joinerEnd(joiner, 'b', 'u'), routes[2]);
    assert.equal(joiner.joinerOldest, routes[1]);
    book.dropJoinerEnd(routes[3]!);
    book.addJoinerEnd(joiner, 'c', 'u', 's');
    assert.deepEqual(joinerIds(book, joiner), ['a/v', 'b/u', 'c/u']);
    // The visitor may drop the route it is given.
    book.forEachJoinerEnd(joiner, (route) => {
      if (route.uid === 'u') book.dropJoinerEnd(route);
    });
    assert.deepEqual(joinerIds(book, joiner), ['a/v']);
    assert.equal(joiner.joinerCount, 1);
  });

  it("the 2-argument answer's lookup finds the uid's route the sharer used last, under any name", () => {
    const book = new RouteBook();
    const sharer = holder('s');
    const a = book.addSharerEnd(sharer, 'a', 'u', 'j1');
    book.use(a);
    const b = book.addSharerEnd(sharer, 'b', 'u', 'j2');
    book.use(b);
    book.addSharerEnd(sharer, 'c', 'other', 'j3');
    assert.equal(book.latestSharerEnd(sharer, 'u'), b);
    book.use(a);
    assert.equal(book.latestSharerEnd(sharer, 'u'), a);
    assert.equal(book.latestSharerEnd(holder('s-other'), 'u'), undefined);
    book.dropSharerEnd(a);
    assert.equal(book.latestSharerEnd(sharer, 'u'), b);
    assert.deepEqual([...sharer.sharerNames!.keys()].sort(), ['b', 'c']);
  });

  it('agrees with a model over many routes coming and going, as the table grows and shrinks', { timeout: 60_000 }, () => {
    const random = rng(7);
    const book = new RouteBook();
    const joiners = Array.from({ length: 20 }, (_, i) => holder(`j${i}`));
    const sharers = Array.from({ length: 5 }, (_, i) => holder(`s${i}`));
    // Joiner end per (joiner, name, uid); uids drawn from a small set so keys collide across names.
    const model = new Map<string, HeldRoute>();
    const key = (j: RouteHolder, n: string, u: string): string => `${j.id} ${n} ${u}`;
    for (let step = 0; step < 20_000; step++) {
      const joiner = joiners[Math.floor(random() * joiners.length)]!;
      const sharer = sharers[Math.floor(random() * sharers.length)]!;
      const name = `n${Math.floor(random() * 30)}`;
      const uid = `u${Math.floor(random() * (step < 10_000 ? 400 : 20))}`;
      const held = book.joinerEnd(joiner, name, uid);
      assert.equal(held, model.get(key(joiner, name, uid)));
      if (held) {
        if (held.sharerEnd) book.dropSharerEnd(held);
        book.dropJoinerEnd(held);
        model.delete(key(joiner, name, uid));
      } else if (![...model.keys()].some((k) => k.endsWith(` ${name} ${uid}`))) {
        // As the registry would: one joiner per (name, uid).
        const route = book.addJoinerEnd(joiner, name, uid, sharer.id);
        assert.equal(book.addSharerEnd(sharer, name, uid, joiner.id), route);
        model.set(key(joiner, name, uid), route);
      }
    }
    assert.equal(book.records, model.size);
    for (const [k, route] of model) {
      const [j, n, u] = k.split(' ');
      const joiner = joiners.find((x) => x.id === j)!;
      assert.equal(book.joinerEnd(joiner, n!, u!), route);
      assert.equal(book.sharerEnd(route.sharerEnd!, n!, u!), route);
    }
    assert.equal(
      joiners.reduce((sum, j) => sum + j.joinerCount, 0),
      model.size,
    );
  });
});
