/**
 * The client library against a real server: real socket.io connections and
 * real WebRTC data channels between Node peers (@roamhq/wrtc). Runs against
 * any Topology: memory mode in client.test.ts, cluster mode wherever the
 * cluster helpers call `clientSuite`. Sharers talk to url('sharer'),
 * joiners to url('joiner').
 * @module
 */
import assert from 'node:assert/strict';
import { after, afterEach, before, describe, it } from 'node:test';
import wrtc from '@roamhq/wrtc';
import {
  join,
  joinMembership,
  share,
  shareMembership,
  SignalingClient,
  SignalingClientError,
  WebRtcMembership,
  type PeerLink,
  type RTCPeerConnectionClass,
  type SharedPeer,
} from '../../src/client/index.js';
import type { Topology, TopologyFactory } from '../support/topology.js';
import { eventually } from '../support/util.js';

export const RTCPeerConnection = wrtc.RTCPeerConnection as unknown as RTCPeerConnectionClass;

/** Resolves with the next message on `channel`. */
export function nextMessage(channel: RTCDataChannel, ms = 10_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no message on ${channel.label} within ${ms} ms`)), ms);
    channel.addEventListener(
      'message',
      (event) => {
        clearTimeout(timer);
        resolve(String((event as MessageEvent).data));
      },
      { once: true },
    );
  });
}

/** Sends one message each way and checks both arrive intact. */
export async function assertTalks(a: RTCDataChannel, b: RTCDataChannel, tag: string): Promise<void> {
  const atB = nextMessage(b);
  a.send(`ping ${tag}`);
  assert.equal(await atB, `ping ${tag}`);
  const atA = nextMessage(a);
  b.send(`pong ${tag}`);
  assert.equal(await atA, `pong ${tag}`);
}

export function clientSuite(label: string, makeTopology: TopologyFactory): void {
  describe(`client library (${label})`, () => {
    let topology: Topology;
    const clients: SignalingClient[] = [];
    const links: PeerLink[] = [];
    const connections: RTCPeerConnection[] = [];

    const client = (role: 'sharer' | 'joiner'): SignalingClient => {
      const made = new SignalingClient(topology.url(role), { socket: { transports: ['websocket'], reconnectionDelay: 100, reconnectionDelayMax: 500 } });
      clients.push(made);
      return made;
    };
    const keep = <T extends PeerLink>(link: T): T => {
      links.push(link);
      return link;
    };
    const watch = (connection: RTCPeerConnection): void => {
      connections.push(connection);
    };

    before(async () => {
      topology = await makeTopology();
    });
    afterEach(() => {
      for (const link of links.splice(0)) link.connection.close();
      for (const connection of connections.splice(0)) connection.close();
      for (const c of clients.splice(0)) c.close();
    });
    after(() => topology.close());

    describe('low level', () => {
      it('shares, launches and answers with Promises and typed events', async () => {
        const sharer = client('sharer');
        const joiner = client('joiner');
        const granted = await sharer.share('low-level', { ttl: 60_000 });
        assert.equal(granted.name, 'low-level');
        assert.ok(granted.expiresAt > Date.now() + 50_000 && granted.expiresAt <= Date.now() + 61_000);
        assert.deepEqual(sharer.shares, ['low-level']);
        const launched = nextEvent<[string, unknown]>(sharer, 'launchResponse', 5000);
        await joiner.launch('low-level', 'uid-1', { hello: 1 });
        assert.deepEqual(await launched, ['uid-1', { hello: 1 }]);
        const answered = nextEvent<[unknown]>(joiner, 'answerResponse', 5000);
        await sharer.answer('low-level', 'uid-1', { hi: 2 });
        assert.deepEqual(await answered, [{ hi: 2 }]);
        assert.deepEqual(await sharer.unshare(), ['low-level']);
        assert.deepEqual(sharer.shares, []);
      });

      it('mints a name when none is given', async () => {
        const granted = await client('sharer').share();
        assert.match(granted.name, /^[A-Za-z0-9_-]{22,}$/);
      });

      it('rejects with a SignalingClientError carrying the server code', async () => {
        const joiner = client('joiner');
        const failure = await joiner.launch('nobody-shares-this', 'uid-x', 'offer').then(
          () => assert.fail('launch should fail'),
          (error: unknown) => error,
        );
        assert.ok(failure instanceof SignalingClientError);
        assert.equal(failure.code, 'no-sharer');
        assert.equal(failure.fromServer, true);
        assert.equal(failure.event, 'launch');
        await assert.rejects(client('sharer').share('x'.repeat(300)), { name: 'SignalingClientError', code: 'bad-request' });
        await assert.rejects(joiner.answer('nobody-shares-this', 'uid-x', 'answer'), { code: 'unknown-joiner' });
        // The socket stays usable after failures.
        assert.equal((await client('sharer').share('after-errors')).name, 'after-errors');
      });

      it('tells a sharer its share expired', async () => {
        const sharer = client('sharer');
        await sharer.share('short-lived', { ttl: 300 });
        const [name] = await nextEvent<[string]>(sharer, 'shareExpired', 5000);
        assert.equal(name, 'short-lived');
        assert.deepEqual(sharer.shares, []);
      });
    });

    describe('high level', () => {
      it('opens a real data channel between two Node peers', async () => {
        const sharer = await share({ client: client('sharer'), name: 'two-peers', RTCPeerConnection });
        const accepted = sharer.accept();
        const joined = keep(await join({ client: client('joiner'), name: 'two-peers', RTCPeerConnection }));
        const peer = keep(await accepted);
        assert.equal(peer.joinerUID, joined.joinerUID);
        assert.equal(joined.channel.readyState, 'open');
        assert.equal(peer.channel.readyState, 'open');
        assert.equal(joined.connection.connectionState, 'connected');
        await assertTalks(joined.channel, peer.channel, 'two');
        await sharer.close();
      });

      it('connects five Node peers: one sharer, four joiners, chat relayed by the sharer', async () => {
        const sharer = await share({ client: client('sharer'), name: 'five-peers', RTCPeerConnection });
        const peers: SharedPeer[] = [];
        const collected = (async () => {
          for await (const peer of sharer.peers()) {
            peers.push(keep(peer));
            // The relay: what one member says, every other member hears.
            peer.channel.addEventListener('message', (event) => {
              for (const other of peers) if (other !== peer) other.channel.send(String((event as MessageEvent).data));
            });
            if (peers.length === 4) break;
          }
        })();
        const joiners = await Promise.all(
          [1, 2, 3, 4].map(async (i) => keep(await join({ client: client('joiner'), name: 'five-peers', RTCPeerConnection, timeout: 60_000 })).channel),
        );
        await collected;
        assert.equal(peers.length, 4);
        assert.equal(new Set(peers.map((p) => p.joinerUID)).size, 4);
        await eventually(() => sharer.pending === 0, 5000, 'no joiner left negotiating');
        const heard = joiners.slice(1).map((channel) => nextMessage(channel));
        joiners[0]!.send('hello from joiner 1');
        assert.deepEqual(await Promise.all(heard), ['hello from joiner 1', 'hello from joiner 1', 'hello from joiner 1']);
        await sharer.close();
      });

      it('fails with no-sharer for a link nobody shares, and after it expired', async () => {
        await assert.rejects(join({ client: client('joiner'), name: 'never-shared', RTCPeerConnection }), { code: 'no-sharer' });
        const sharer = await share({ client: client('sharer'), name: 'expiring', ttl: 400, RTCPeerConnection });
        await nextEvent(sharer, 'expired', 5000);
        assert.equal(sharer.ended, true);
        await assert.rejects(join({ client: client('joiner'), name: 'expiring', RTCPeerConnection }), { code: 'no-sharer' });
        const next = await sharer.peers().next();
        assert.equal(next.done, true);
      });

      it('fails with share-full past maxJoins', async () => {
        const sharer = await share({ client: client('sharer'), name: 'only-one', maxJoins: 1, RTCPeerConnection });
        keep(await join({ client: client('joiner'), name: 'only-one', RTCPeerConnection }));
        keep(await sharer.accept());
        await assert.rejects(join({ client: client('joiner'), name: 'only-one', RTCPeerConnection }), { code: 'share-full' });
      });

      it('cancels a join with an AbortSignal and closes its connection', async () => {
        const silent = client('sharer');
        await silent.share('silent');
        const offered = nextEvent(silent, 'launchResponse', 5000);
        const controller = new AbortController();
        let connection: RTCPeerConnection | undefined;
        const joining = join({
          client: client('joiner'),
          name: 'silent',
          RTCPeerConnection,
          signal: controller.signal,
          onConnection: (c) => (connection = c),
        });
        await offered;
        controller.abort(new Error('changed my mind'));
        await assert.rejects(joining, { message: 'changed my mind' });
        assert.equal(connection?.signalingState, 'closed');
      });

      it('times out when no sharer answers', async () => {
        await client('sharer').share('mute');
        const started = Date.now();
        await assert.rejects(join({ client: client('joiner'), name: 'mute', RTCPeerConnection, timeout: 1500 }), { code: 'timeout' });
        assert.ok(Date.now() - started >= 1400);
      });

      it('starts over with the next sharer when its sharer disconnects mid-handshake', async () => {
        const leaving = client('sharer');
        await leaving.share('handover');
        const offered = nextEvent(leaving, 'launchResponse', 5000);
        const joining = join({ client: client('joiner'), name: 'handover', RTCPeerConnection, timeout: 30_000 });
        await offered;
        // Only now does a second sharer appear; then the first one leaves.
        const staying = await share({ client: client('sharer'), name: 'handover', RTCPeerConnection });
        const accepted = staying.accept();
        leaving.close();
        const joined = keep(await joining);
        const peer = keep(await accepted);
        await assertTalks(joined.channel, peer.channel, 'handover');
        await staying.close();
      });

      it('restores a share under the same name after the connection to the server drops', async () => {
        const sharerClient = client('sharer');
        const sharer = await share({ client: sharerClient, name: 'comes-back', ttl: 120_000, RTCPeerConnection });
        const before = sharer.expiresAt;
        const firstId = sharerClient.socket.id;
        const restored = nextEvent<[number]>(sharer, 'restored', 15_000);
        // A dropped transport, as when a laptop changes networks: socket.io
        // reconnects with a new socket id, which the server never saw.
        sharerClient.socket.io.engine.close();
        const [expiresAt] = await restored;
        assert.notEqual(sharerClient.socket.id, firstId);
        assert.ok(Math.abs(expiresAt - before) < 5000, 'restored for what was left of its lifetime');
        const accepted = sharer.accept();
        const joined = keep(await join({ client: client('joiner'), name: 'comes-back', RTCPeerConnection }));
        await assertTalks(joined.channel, keep(await accepted).channel, 'restored');
        await sharer.close();
      });
    });

    describe('membership adapter', () => {
      it('connects two WebRtcMemberships through shareMembership and joinMembership', async () => {
        const host = new WebRtcMembership({ RTCPeerConnection });
        const guest = new WebRtcMembership({ RTCPeerConnection });
        const hostSide = nextEvent<[PeerLink]>(host, 'connection', 20_000);
        const guestSide = nextEvent<[PeerLink]>(guest, 'connection', 20_000);
        const shared = await shareMembership(client('sharer'), host, { name: 'membership' });
        assert.equal(shared.name, 'membership');
        const joined = await joinMembership(client('joiner'), guest, { name: 'membership' });
        const [[a], [b]] = await Promise.all([hostSide, guestSide]);
        keep(a);
        keep(b);
        await assertTalks(b.channel, a.channel, 'membership');
        joined.close();
        await shared.close();
        const late = new WebRtcMembership({ RTCPeerConnection });
        await assert.rejects(joinMembership(client('joiner'), late, { name: 'membership' }), { code: 'no-sharer' });
        late.close();
      });

      it("keeps the original README's hand-written glue working", async () => {
        const host = new WebRtcMembership({ RTCPeerConnection });
        const guest = new WebRtcMembership({ RTCPeerConnection });
        const hostSide = nextEvent<[PeerLink]>(host, 'connection', 20_000);
        const guestSide = nextEvent<[PeerLink]>(guest, 'connection', 20_000);
        // The original README's client example, on raw sockets.
        const peer1 = client('sharer').socket;
        const peer2 = client('joiner').socket;
        const name = 'readme-glue';
        const ourUID = 'peer-2';
        const shared = new Promise<void>((resolve) => peer1.emit('share', name, {}, () => resolve()));
        peer1.on('launchResponse', (joinerUID, message) => {
          host.answer(message, (answerMessage) => {
            peer1.emit('answer', name, joinerUID, answerMessage);
          });
        });
        peer2.on('answerResponse', (message) => {
          guest.handshake(message);
        });
        await shared;
        guest.launch((message) => {
          peer2.emit('launch', name, ourUID, message);
        });
        const [[a], [b]] = await Promise.all([hostSide, guestSide]);
        keep(a);
        keep(b);
        await assertTalks(b.channel, a.channel, 'glue');
      });
    });
  });
}

/** Resolves with the arguments of the next `event` of one of the client's emitters. */
export function nextEvent<T extends unknown[] = unknown[]>(source: object, event: string, ms = 5000): Promise<T> {
  const once = (source as { once(event: string, listener: (...args: unknown[]) => void): () => void }).once.bind(source);
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => {
      stop();
      reject(new Error(`timed out after ${ms} ms waiting for ${event}`));
    }, ms);
    const stop = once(event, (...args) => {
      clearTimeout(timer);
      resolve(args as T);
    });
  });
}
