/**
 * What a suite may observe besides sockets: /healthz and /metrics of every
 * node, over HTTP, summed across the topology where that makes sense.
 * @module
 */
import assert from 'node:assert/strict';
import type { AckFailure, ErrorCode, SignalingErrorBody } from '../../src/protocol/index.js';
import { health, type HealthBody, type Topology } from '../support/topology.js';
import { request, waitFor, type TestSocket } from '../support/util.js';

export { health, type HealthBody };

/** The /metrics text of every node. */
export async function metricsTexts(topology: Topology): Promise<string[]> {
  return Promise.all(
    topology.urls.map(async (u) => {
      const res = await fetch(`${u}/metrics`);
      assert.equal(res.status, 200);
      return res.text();
    }),
  );
}

/**
 * The value of one sample (`name` with exactly these labels) in Prometheus
 * text, 0 when absent.
 */
export function sample(text: string, name: string, labels: Record<string, string> = {}): number {
  const wanted = Object.entries(labels)
    .map(([k, v]) => `${k}="${v}"`)
    .sort()
    .join(',');
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{([^}]*)\})?\s+(\S+)/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = (m[2] ?? '').split(',').filter(Boolean).sort().join(',');
    if (have === wanted) return Number(m[3]);
  }
  return 0;
}

/** One sample summed over every node of the topology. */
export async function total(topology: Topology, name: string, labels: Record<string, string> = {}): Promise<number> {
  return (await metricsTexts(topology)).reduce((sum, text) => sum + sample(text, name, labels), 0);
}

/** The counts of /healthz that must return to where they started, per node. */
export async function counts(topology: Topology): Promise<unknown[]> {
  return (await health(topology)).map((h) => ({ sockets: h.sockets, shares: h.shares, routes: h.routes, registry: h.registry }));
}

/**
 * Sends `event` with an ack and expects it to fail with `code`: checks the
 * ack shape and the matching signalingError event, and returns the event body.
 */
export async function expectFailure(socket: TestSocket, code: ErrorCode, event: string, ...args: unknown[]): Promise<SignalingErrorBody> {
  const signalled = waitFor<[SignalingErrorBody]>(socket, 'signalingError');
  const ack = await request<AckFailure>(socket, event, ...args);
  assert.equal(ack.ok, false, `${event} should fail with ${code}, acked ${JSON.stringify(ack)}`);
  assert.deepEqual(Object.keys(ack).sort(), ['error', 'ok']);
  assert.deepEqual(Object.keys(ack.error).sort(), ['code', 'message']);
  assert.equal(ack.error.code, code, ack.error.message);
  assert.equal(typeof ack.error.message, 'string');
  assert.ok(ack.error.message.length > 0);
  const [body] = await signalled;
  assert.equal(body.code, code);
  assert.equal(body.message, ack.error.message);
  assert.equal(body.event, event);
  return body;
}

/** Sends `event` without an ack and waits for the signalingError it causes. */
export async function expectSignal(socket: TestSocket, code: ErrorCode, event: string, ...args: unknown[]): Promise<SignalingErrorBody> {
  const signalled = waitFor<[SignalingErrorBody]>(socket, 'signalingError');
  (socket as unknown as { emit(e: string, ...a: unknown[]): void }).emit(event, ...args);
  const [body] = await signalled;
  assert.equal(body.code, code, body.message);
  assert.equal(body.event, event);
  return body;
}

/** Emits without an ack, for events the typed client would refuse. */
export function send(socket: TestSocket, event: string, ...args: unknown[]): void {
  (socket as unknown as { emit(e: string, ...a: unknown[]): void }).emit(event, ...args);
}

/**
 * A fresh sharer and joiner complete a whole exchange under `name`: the
 * proof that the server still serves clients after whatever came before.
 */
export async function handshake(topology: Topology, name: string, connectFn: (url: string) => Promise<TestSocket>): Promise<void> {
  const sharer = await connectFn(topology.url('sharer'));
  const joiner = await connectFn(topology.url('joiner'));
  assert.equal((await request<{ ok: boolean }>(sharer, 'share', name)).ok, true);
  const launched = waitFor<[string, unknown]>(sharer, 'launchResponse');
  assert.deepEqual(await request(joiner, 'launch', name, 'hs-uid', { sdp: 'offer' }), { ok: true, joinerUID: 'hs-uid' });
  assert.deepEqual(await launched, ['hs-uid', { sdp: 'offer' }]);
  const answered = waitFor<[unknown]>(joiner, 'answerResponse');
  assert.deepEqual(await request(sharer, 'answer', name, 'hs-uid', { sdp: 'answer' }), { ok: true });
  assert.deepEqual(await answered, [{ sdp: 'answer' }]);
  sharer.disconnect();
  joiner.disconnect();
}
