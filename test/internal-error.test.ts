/**
 * The `internal` error code: a request the server fails to handle for a
 * reason of its own. No client can provoke that from outside, so this test
 * composes the real endpoint and core with a registry that fails, and talks
 * to them with a real socket.io client over loopback.
 * @module
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { Server } from 'socket.io';
import { InMemoryRegistry } from '../src/cluster/in-memory-registry.js';
import { LocalDelivery } from '../src/cluster/local-delivery.js';
import { systemClock } from '../src/core/clock.js';
import { SignalingCore } from '../src/core/signaling-core.js';
import type { JoinerUID, RouteOutcome, ShareName, SocketId } from '../src/core/types.js';
import type { AckFailure, SignalingErrorBody } from '../src/protocol/index.js';
import { ServerMetrics } from '../src/server/metrics.js';
import { SocketEndpoint } from '../src/server/socket-endpoint.js';
import { connect, disconnectAll, request, waitFor } from './support/util.js';
import { sample } from './protocol/probe.js';

/**
 * The one stand-in of the test suite, and deliberately so: a real registry
 * whose routing fails the way a registry that lost its backing store would
 * (in cluster mode, Redis going away). Everything else it inherits.
 */
class FailingRouteRegistry extends InMemoryRegistry {
  failing = true;
  override async route(name: ShareName, uid: JoinerUID, joiner: SocketId, now: number): Promise<RouteOutcome> {
    if (this.failing) throw new Error('registry unavailable');
    return super.route(name, uid, joiner, now);
  }
}

describe('internal error', () => {
  const registry = new FailingRouteRegistry();
  const logLines: string[] = [];
  const logger = pino({ level: 'error' }, { write: (line: string) => void logLines.push(line) });
  let core: SignalingCore;
  let metrics: ServerMetrics;
  let io: Server;
  let url: string;

  before(async () => {
    metrics = new ServerMetrics(() => core.localStats());
    const endpoint = new SocketEndpoint({ metrics, logger, maxMessageSize: 65_536, rate: { rate: 1000, burst: 1000 } });
    core = new SignalingCore({
      registry,
      delivery: new LocalDelivery(),
      sink: endpoint.sink,
      clock: systemClock,
      limits: { defaultTtl: 60_000, maxTtl: 60_000, maxSharesPerSocket: 4, maxRoutesPerSocket: 4 },
    });
    const http = createServer();
    io = new Server(http);
    endpoint.attach(io.of('/'), core);
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
  });
  after(async () => {
    disconnectAll();
    await new Promise<void>((resolve) => io.close(() => resolve()));
  });

  it('answers a request the server failed with internal, logs the error without the payload, and carries on', async () => {
    const sharer = await connect(url);
    const joiner = await connect(url);
    assert.equal((await request<{ ok: boolean }>(sharer, 'share', 'int-name')).ok, true);
    const signalled = waitFor<[SignalingErrorBody]>(joiner, 'signalingError');
    const ack = await request<AckFailure>(joiner, 'launch', 'int-name', 'uid', { sdp: 'SECRET-SDP 192.0.2.7' });
    assert.deepEqual(Object.keys(ack).sort(), ['error', 'ok']);
    assert.equal(ack.ok, false);
    assert.equal(ack.error.code, 'internal');
    assert.equal(typeof ack.error.message, 'string');
    const [body] = await signalled;
    assert.equal(body.code, 'internal');
    assert.equal(body.event, 'launch');
    assert.equal(body.message, ack.error.message);
    // The cause is in the log; the payload is not, nor in what the client saw.
    assert.ok(logLines.some((l) => l.includes('registry unavailable')), 'the failure was logged');
    assert.ok(!logLines.some((l) => l.includes('SECRET-SDP')), 'the payload was logged');
    assert.ok(!ack.error.message.includes('registry unavailable'), 'internals leaked to the client');
    assert.equal(sample(await metrics.registry.metrics(), 'sigserve_errors_total', { code: 'internal' }), 1);
    // Both sockets stay connected, and once the registry is back the same launch works.
    assert.equal(joiner.connected, true);
    assert.equal(sharer.connected, true);
    registry.failing = false;
    const launched = waitFor(sharer, 'launchResponse');
    assert.deepEqual(await request(joiner, 'launch', 'int-name', 'uid', 'offer'), { ok: true, joinerUID: 'uid' });
    assert.deepEqual(await launched, ['uid', 'offer']);
  });
});
