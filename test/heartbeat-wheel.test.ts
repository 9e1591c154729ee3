/**
 * The heartbeat wheel (src/server/heartbeat-wheel.ts): every member is
 * visited once per turn, also while visits remove members, and a removed
 * member is never visited again.
 * @module
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { HeartbeatWheel, type Beating } from '../src/server/heartbeat-wheel.js';
import { eventually } from './support/util.js';

class Member implements Beating {
  slot = -1;
  visits = 0;
  constructor(readonly onBeat: (self: Member) => void = () => {}) {}
  beat(): void {
    this.visits++;
    this.onBeat(this);
  }
}

describe('heartbeat wheel', () => {
  it('visits every member once per turn, and removed members never', async () => {
    const wheel = new HeartbeatWheel<Member>(200, 50);
    try {
      // Every third member leaves on its first visit; the others stay.
      const members = Array.from({ length: 30 }, (_, i) => new Member(i % 3 === 0 ? (m) => wheel.remove(m) : undefined));
      for (const m of members) wheel.add(m);
      const gone = new Member();
      wheel.add(gone);
      wheel.remove(gone);
      assert.equal(wheel.size, 30);
      await eventually(() => members.every((m, i) => i % 3 === 0 || m.visits >= 3), 5000, 'three turns');
      const stayed = members.filter((_, i) => i % 3 !== 0);
      const leavers = members.filter((_, i) => i % 3 === 0);
      assert.ok(leavers.every((m) => m.visits === 1), 'a member that left was visited once');
      assert.equal(gone.visits, 0);
      assert.equal(wheel.size, stayed.length);
      assert.deepEqual(new Set(wheel.members()), new Set(stayed));
      // One visit per turn: the counts of the members that stayed differ by at most one.
      const visits = stayed.map((m) => m.visits);
      assert.ok(Math.max(...visits) - Math.min(...visits) <= 1, `visits ${visits.join(',')}`);
    } finally {
      wheel.stop();
    }
  });
});
