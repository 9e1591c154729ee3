/**
 * The core relay: share, launch, answer, in both argument forms. Runs
 * against any Topology (memory mode here, cluster mode in test/cluster).
 * @module
 */
import assert from 'node:assert/strict';
import { after, afterEach, before, describe, it } from 'node:test';
import type { Topology, TopologyFactory } from '../support/topology.js';
import { connect, disconnectAll, request, waitFor } from '../support/util.js';
import { send } from './probe.js';

export function relaySuite(label: string, makeTopology: TopologyFactory): void {
  describe(`relay (${label})`, () => {
    let topology: Topology;
    before(async () => {
      topology = await makeTopology();
    });
    afterEach(() => disconnectAll());
    after(() => topology.close());

    it('relays an offer to the sharer and its answer back (3-argument forms)', async () => {
      const sharer = await connect(topology.url('sharer'));
      const joiner = await connect(topology.url('joiner'));
      const granted = await request<{ ok: boolean; name: string }>(sharer, 'share', 'relay-3');
      assert.equal(granted.ok, true);
      assert.equal(granted.name, 'relay-3');
      const launched = waitFor<[string, unknown]>(sharer, 'launchResponse');
      assert.deepEqual(await request(joiner, 'launch', 'relay-3', 'uid-1', { sdp: 'offer' }), { ok: true, joinerUID: 'uid-1' });
      assert.deepEqual(await launched, ['uid-1', { sdp: 'offer' }]);
      const answered = waitFor<[unknown]>(joiner, 'answerResponse');
      assert.deepEqual(await request(sharer, 'answer', 'relay-3', 'uid-1', { sdp: 'answer' }), { ok: true });
      assert.deepEqual(await answered, [{ sdp: 'answer' }]);
    });

    it('uses the socket id as joinerUID in the 2-argument forms', async () => {
      const sharer = await connect(topology.url('sharer'));
      const joiner = await connect(topology.url('joiner'));
      await request(sharer, 'share', 'relay-2');
      const launched = waitFor<[string, unknown]>(sharer, 'launchResponse');
      send(joiner, 'launch', 'relay-2', 'offer');
      const [uid, message] = await launched;
      assert.equal(uid, joiner.id);
      assert.equal(message, 'offer');
      const answered = waitFor<[unknown]>(joiner, 'answerResponse');
      send(sharer, 'answer', uid, 'answer');
      assert.deepEqual(await answered, ['answer']);
    });
  });
}
