/**
 * End to end: two Node peers (@roamhq/wrtc) open a real RTCDataChannel with
 * nothing but this server between them. The joiner's offer and trickled ICE
 * candidates travel as launches, the sharer's answer and candidates as
 * answers; then a message crosses the channel each way. No ICE servers:
 * host candidates on this machine are enough.
 */
import assert from 'node:assert/strict';
import { after, afterEach, before, describe, it } from 'node:test';
import wrtc from '@roamhq/wrtc';
import type { RunningServer } from '../src/server/server.js';
import { connect, disconnectAll, request, startTestServer, type TestSocket } from './support/util.js';

const { RTCPeerConnection } = wrtc;
type PeerConnection = InstanceType<typeof RTCPeerConnection>;
type Channel = ReturnType<PeerConnection['createDataChannel']>;

/** What peers send through the server: a description or a candidate (null: end of candidates). */
type Signal = { description: { type: string; sdp: string } } | { candidate: { candidate: string; sdpMid: string | null; sdpMLineIndex: number | null } | null };

const OPEN_TIMEOUT = 20_000;

function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
    }),
  ]);
}

/** Applies remote signals in arrival order; candidates wait for the remote description. */
class SignalApplier {
  #chain: Promise<void> = Promise.resolve();
  readonly errors: unknown[] = [];
  constructor(private readonly pc: PeerConnection, private readonly onOffer?: () => Promise<void>) {}

  apply(signal: Signal): void {
    this.#chain = this.#chain
      .then(async () => {
        if ('description' in signal) {
          await this.pc.setRemoteDescription(signal.description as RTCSessionDescriptionInit);
          if (signal.description.type === 'offer') await this.onOffer?.();
        } else if (signal.candidate) {
          await this.pc.addIceCandidate(signal.candidate);
        }
      })
      .catch((error: unknown) => {
        this.errors.push(error);
      });
  }
}

function opened(channel: Channel): Promise<void> {
  return channel.readyState === 'open' ? Promise.resolve() : new Promise((resolve) => channel.addEventListener('open', () => resolve(), { once: true }));
}

function nextMessage(channel: Channel): Promise<string> {
  return new Promise((resolve) => channel.addEventListener('message', (event) => resolve(String((event as MessageEvent).data)), { once: true }));
}

/** Sends the short argument forms, which the typed event map leaves out. */
const emitLoose = (socket: TestSocket, event: string, ...args: unknown[]): void => {
  (socket as unknown as { emit(e: string, ...a: unknown[]): void }).emit(event, ...args);
};

describe('WebRTC data channel through the server', () => {
  let server: RunningServer;
  const peers: PeerConnection[] = [];
  before(async () => {
    server = await startTestServer();
  });
  afterEach(() => {
    for (const pc of peers.splice(0)) pc.close();
    disconnectAll();
  });
  after(() => server.close());

  for (const form of ['3-argument', '2-argument'] as const) {
    it(`opens a channel and exchanges a message each way (${form} launch and answer)`, async () => {
      const name = `webrtc-${form}-${Date.now()}`;
      const sharerSocket = await connect(server.url);
      const joinerSocket = await connect(server.url);
      assert.equal((await request<{ ok: boolean }>(sharerSocket, 'share', name)).ok, true);
      const joinerUID = form === '3-argument' ? 'wrtc-joiner' : joinerSocket.id!;
      const counts = { launchCandidates: 0, answerCandidates: 0, launches: 0, answers: 0 };
      // Each side ends its trickle with a null candidate. The channel can open
      // on one side's candidates alone (the other learns peer-reflexive ones
      // from connectivity checks), so the counts are read once both ends'
      // trickles have crossed the server, not when the channel opens.
      let joinerTrickleCrossed!: () => void;
      let sharerTrickleCrossed!: () => void;
      const tricklesCrossed = Promise.all([
        new Promise<void>((resolve) => (joinerTrickleCrossed = resolve)),
        new Promise<void>((resolve) => (sharerTrickleCrossed = resolve)),
      ]);

      // Sharer: one peer connection per joiner, made when its first signal arrives.
      const sharerChannel = new Promise<Channel>((resolveChannel) => {
        const appliers = new Map<string, SignalApplier>();
        sharerSocket.on('launchResponse', (uid: string, message: unknown) => {
          counts.launches++;
          const signal = message as Signal;
          if ('candidate' in signal) {
            if (signal.candidate) counts.launchCandidates++;
            else joinerTrickleCrossed();
          }
          let applier = appliers.get(uid);
          if (!applier) {
            const pc = new RTCPeerConnection({ iceServers: [] });
            peers.push(pc);
            const reply = (m: Signal): void => {
              if (form === '3-argument') sharerSocket.emit('answer', name, uid, m);
              else emitLoose(sharerSocket, 'answer', uid, m);
            };
            pc.addEventListener('icecandidate', (event) => {
              const c = (event as RTCPeerConnectionIceEvent).candidate;
              reply({ candidate: c ? { candidate: c.candidate, sdpMid: c.sdpMid, sdpMLineIndex: c.sdpMLineIndex } : null });
            });
            pc.addEventListener('datachannel', (event) => resolveChannel((event as RTCDataChannelEvent).channel as unknown as Channel));
            applier = new SignalApplier(pc, async () => {
              const answer = await pc.createAnswer();
              await pc.setLocalDescription(answer);
              reply({ description: { type: answer.type, sdp: answer.sdp! } });
            });
            appliers.set(uid, applier);
            sharerErrors = applier.errors;
          }
          applier.apply(signal);
        });
      });
      let sharerErrors: unknown[] = [];

      // Joiner: creates the channel and the offer; every signal goes out as a launch.
      const pc = new RTCPeerConnection({ iceServers: [] });
      peers.push(pc);
      const send = (m: Signal): void => {
        if (form === '3-argument') joinerSocket.emit('launch', name, joinerUID, m);
        else emitLoose(joinerSocket, 'launch', name, m);
      };
      const joinerApplier = new SignalApplier(pc);
      joinerSocket.on('answerResponse', (message: unknown) => {
        counts.answers++;
        const signal = message as Signal;
        if ('candidate' in signal) {
          if (signal.candidate) counts.answerCandidates++;
          else sharerTrickleCrossed();
        }
        joinerApplier.apply(signal);
      });
      const signalingErrors: unknown[] = [];
      for (const s of [sharerSocket, joinerSocket]) s.on('signalingError', (body) => signalingErrors.push(body));

      const joinerChannel = pc.createDataChannel('chat');
      // Candidates found before the offer has gone out wait for it.
      let held: Signal[] | undefined = [];
      pc.addEventListener('icecandidate', (event) => {
        const c = (event as RTCPeerConnectionIceEvent).candidate;
        const signal: Signal = { candidate: c ? { candidate: c.candidate, sdpMid: c.sdpMid, sdpMLineIndex: c.sdpMLineIndex } : null };
        if (held) held.push(signal);
        else send(signal);
      });
      const offer = await pc.createOffer();
      await pc.setLocalDescription(offer);
      send({ description: { type: offer.type, sdp: offer.sdp! } });
      for (const signal of held) send(signal);
      held = undefined;

      const remoteChannel = await within(sharerChannel, OPEN_TIMEOUT, 'the sharer to get the data channel');
      await within(Promise.all([opened(joinerChannel), opened(remoteChannel)]), OPEN_TIMEOUT, 'both ends of the channel to open');

      const atSharer = nextMessage(remoteChannel);
      joinerChannel.send('hello from the joiner');
      assert.equal(await within(atSharer, 10_000, 'the message at the sharer'), 'hello from the joiner');
      const atJoiner = nextMessage(joinerChannel);
      remoteChannel.send('hello from the sharer');
      assert.equal(await within(atJoiner, 10_000, 'the message at the joiner'), 'hello from the sharer');

      // The whole exchange went through the server: candidates trickled both ways, nothing failed.
      await within(tricklesCrossed, OPEN_TIMEOUT, 'both ends to finish trickling candidates');
      assert.ok(counts.launchCandidates >= 1, `joiner sent ${counts.launchCandidates} candidates`);
      assert.ok(counts.answerCandidates >= 1, `sharer sent ${counts.answerCandidates} candidates`);
      assert.ok(counts.launches >= 2 && counts.answers >= 2);
      assert.deepEqual(signalingErrors, []);
      assert.deepEqual(joinerApplier.errors, []);
      assert.deepEqual(sharerErrors, []);
    });
  }
});
