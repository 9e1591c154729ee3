import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { RouteTable, routeEnd, type RouteEnd } from '../src/core/route-table.js';

const ids = (table: RouteTable): string[] => {
  const out: string[] = [];
  table.forEach((route) => out.push(`${route.name}/${route.uid}`));
  return out;
};

describe('RouteTable', () => {
  it('finds routes by (name, uid), also when several names share one uid', () => {
    const table = new RouteTable();
    const a = routeEnd('a', 'u', 'peer-a');
    const b = routeEnd('b', 'u', 'peer-b');
    const c = routeEnd('a', 'v', 'peer-c');
    table.add(a);
    table.add(b);
    table.add(c);
    assert.equal(table.size, 3);
    assert.equal(table.get('a', 'u'), a);
    assert.equal(table.get('b', 'u'), b);
    assert.equal(table.get('a', 'v'), c);
    assert.equal(table.get('b', 'v'), undefined);
    assert.equal(table.get('c', 'u'), undefined);
    // A name and uid that would concatenate alike are still told apart.
    assert.equal(table.get('au', ''), undefined);
  });

  it('keeps routes oldest first, whatever their uids', () => {
    const table = new RouteTable();
    const routes = [routeEnd('a', 'u', 'p'), routeEnd('a', 'v', 'p'), routeEnd('b', 'u', 'p'), routeEnd('b', 'w', 'p')];
    for (const route of routes) table.add(route);
    assert.deepEqual(ids(table), ['a/u', 'a/v', 'b/u', 'b/w']);
    assert.equal(table.oldest(), routes[0]);
    table.delete(routes[0]!);
    // The other route of uid u stays findable and keeps its age.
    assert.equal(table.get('b', 'u'), routes[2]);
    assert.equal(table.oldest(), routes[1]);
    assert.deepEqual(ids(table), ['a/v', 'b/u', 'b/w']);
    table.delete(routes[3]!);
    table.add(routeEnd('c', 'u', 'p'));
    assert.deepEqual(ids(table), ['a/v', 'b/u', 'c/u']);
  });

  it('latest(uid) is the most recently added or used route of that uid', () => {
    const table = new RouteTable();
    const a = routeEnd('a', 'u', 'p');
    const b = routeEnd('b', 'u', 'p');
    const c = routeEnd('c', 'u', 'p');
    table.add(a);
    assert.equal(table.latest('u'), a);
    table.add(b);
    table.add(c);
    assert.equal(table.latest('u'), c);
    table.use(a);
    assert.equal(table.latest('u'), a);
    // Using a route does not change its age.
    assert.deepEqual(ids(table), ['a/u', 'b/u', 'c/u']);
    // Its siblings are all still found after the move.
    assert.equal(table.get('b', 'u'), b);
    assert.equal(table.get('c', 'u'), c);
    table.delete(a);
    assert.equal(table.latest('u'), c);
    table.delete(b);
    table.delete(c);
    assert.equal(table.latest('u'), undefined);
    assert.equal(table.size, 0);
    assert.equal(table.oldest(), undefined);
    assert.deepEqual(ids(table), []);
  });

  it('forEach lets the visitor delete the route it is given', () => {
    const table = new RouteTable();
    const routes: RouteEnd[] = [];
    for (let i = 0; i < 6; i++) {
      const route = routeEnd(i % 2 ? 'odd' : 'even', `u${i % 3}`, `p${i}`);
      routes.push(route);
      table.add(route);
    }
    table.forEach((route) => {
      if (route.name === 'odd') table.delete(route);
    });
    assert.deepEqual(ids(table), ['even/u0', 'even/u2', 'even/u1']);
    assert.equal(table.size, 3);
    for (const route of routes) assert.equal(table.get(route.name, route.uid), route.name === 'even' ? route : undefined);
  });
});
