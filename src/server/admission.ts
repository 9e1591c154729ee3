/**
 * Who may connect, and how much each client address may do: checked in
 * engine.io's `allowRequest`, before a connection costs anything, for
 * long-polling handshakes and websocket upgrades alike.
 *
 * - Origin: a browser request whose Origin is not allowed is refused
 *   (socket.io's `cors` option only sets headers, and websockets ignore
 *   CORS). Requests without an Origin (non-browser clients) pass.
 * - Connections in total and per client address on this node.
 * - New connections per client address per second, and events per client
 *   address per second, counted on a Budget: cluster-wide on Redis.
 *
 * The per-event check stays cheap: it counts locally and spends the count
 * on the budget in batches (an address's count once it reaches a 20th of
 * the window's budget, and every quarter second the counts of all the
 * addresses active since, in one call to the store); an address found over
 * budget is refused locally until its window ends.
 * @module
 */
import type { EventEmitter } from 'node:events';
import type { IncomingMessage } from 'node:http';
import type { BlockList } from 'node:net';
import { Counter, type Registry as MetricsRegistry } from 'prom-client';
import { addressKey, clientAddress } from './client-address.js';
import type { BudgetFactory, Budget } from './limiter-store.js';

export interface AdmissionOptions {
  /** Allowed browser origins; `true` allows any. */
  origins: true | readonly string[];
  /** Peers whose X-Forwarded-For is believed; none when undefined. */
  trustedProxies: BlockList | undefined;
  /** Open connections on this node. */
  maxConnections: number;
  /** Open connections from one client address on this node. */
  maxConnectionsPerAddress: number;
  /** New connections per second one address may open, averaged over `window`. */
  connectRate: number;
  /** Events per second all sockets of one address may send, averaged over `window`. */
  eventRate: number;
  /**
   * Window of the per-address rates, in seconds.
   * @default 10
   */
  windowSeconds?: number;
  budgets: BudgetFactory;
  metrics: MetricsRegistry;
}

/** What this node knows about one client address (an IPv4 address or an IPv6 /64). */
export interface AddressState {
  readonly key: string;
  /** Open connections from it on this node. */
  connections: number;
  /** Events counted locally since the last spend on the budget. */
  pending: number;
  /** performance.now() before which its events are refused; 0 when not blocked. */
  blockedUntil: number;
}

export type RefusalReason = 'origin' | 'capacity' | 'address-capacity' | 'rate-limited';

/**
 * What remains of the request a connection began with, once admitted: all
 * socket.io reads to build a socket's `handshake` (for every namespace
 * connection, also a later one on the same engine.io connection) and the
 * TCP socket. engine.io otherwise keeps the whole IncomingMessage alive for
 * the connection's life (its stream state, raw header list and response
 * header map: about 1 KB per idle connection). The limits' client address
 * was read before this, in `watch`.
 */
function upgradeRequestStub(req: IncomingMessage): IncomingMessage {
  const { headers, url, socket } = req;
  const stub = { headers, url, socket, connection: socket, _query: (req as { _query?: unknown })._query };
  return stub as unknown as IncomingMessage;
}

/**
 * engine.io answers a websocket upgrade through a WebSocketResponse (for
 * engine middlewares, which this server does not use) that stays subscribed
 * to the TCP socket's 'close' for the connection's life, and keeps the
 * upgrade request alive with it. Its listener is recognized by its source;
 * test/security/admission.test.ts fails if a new engine.io stops matching.
 */
function releaseUpgradeResponse(socket: EventEmitter | undefined): void {
  if (!socket) return;
  for (const listener of socket.rawListeners('close') as { listener?: () => void }[]) {
    if (listener.listener && listener.listener.name === '' && String(listener.listener) === '() => this.emit("close")') {
      socket.removeListener('close', listener.listener);
    }
  }
}

/** The engine.io socket as far as admission needs it. */
interface EngineSocketLike {
  request: IncomingMessage;
  transport?: { name: string };
  on(event: 'close', listener: (this: object) => void): unknown;
  once(event: 'upgrade', listener: (transport: { socket?: { _socket?: EventEmitter } }) => void): unknown;
}

interface EngineLike {
  clientsCount: number;
  on(event: 'connection', listener: (socket: EngineSocketLike) => void): unknown;
}

const FLUSH_INTERVAL_MS = 250;

export class Admission {
  readonly #options: AdmissionOptions;
  readonly #states = new Map<string, AddressState>();
  readonly #byRequest = new WeakMap<IncomingMessage, string>();
  readonly #byConnection = new WeakMap<object, AddressState>();
  /** Addresses with events not yet spent. */
  readonly #dirty = new Set<AddressState>();
  readonly #connectBudget: Budget;
  readonly #eventBudget: Budget;
  readonly #batch: number;
  readonly #refused: Counter<'reason'>;
  readonly #timer: NodeJS.Timeout;
  #engine: EngineLike | undefined;
  /** Connections opened through `admitted` (served outside engine.io). */
  #direct = 0;

  constructor(options: AdmissionOptions) {
    this.#options = options;
    const window = options.windowSeconds ?? 10;
    this.#connectBudget = options.budgets({ keyPrefix: 'connect', points: options.connectRate * window, durationSeconds: window });
    this.#eventBudget = options.budgets({ keyPrefix: 'event', points: options.eventRate * window, durationSeconds: window });
    // A 20th of the window's budget: an address overshoots by at most that
    // (plus what arrives during one flush interval) before it is stopped.
    this.#batch = Math.max(1, Math.floor((options.eventRate * window) / 20));
    this.#refused = new Counter({
      name: 'sigserve_refused_connections_total',
      help: 'Connection attempts refused before the handshake, by reason',
      labelNames: ['reason'],
      registers: [options.metrics],
    });
    for (const reason of ['origin', 'capacity', 'address-capacity', 'rate-limited'] satisfies RefusalReason[]) this.#refused.inc({ reason }, 0);
    this.#timer = setInterval(() => this.#flushAll(), FLUSH_INTERVAL_MS);
    this.#timer.unref();
  }

  /** engine.io's `allowRequest` hook: runs for every handshake (polling or websocket). */
  readonly allowRequest = (req: IncomingMessage, callback: (err: string | null | undefined, success: boolean) => void): void => {
    const refuse = (reason: RefusalReason): void => {
      this.#refused.inc({ reason });
      callback(reason, false);
    };
    const origin = req.headers.origin;
    const { origins } = this.#options;
    if (origin !== undefined && origins !== true && !origins.includes(origin)) return refuse('origin');
    if ((this.#engine?.clientsCount ?? 0) + this.#direct >= this.#options.maxConnections) return refuse('capacity');
    const key = addressKey(clientAddress(req, this.#options.trustedProxies));
    if ((this.#states.get(key)?.connections ?? 0) >= this.#options.maxConnectionsPerAddress) return refuse('address-capacity');
    this.#connectBudget.spend(key, 1).then((blockedMs) => {
      if (blockedMs > 0) return refuse('rate-limited');
      this.#byRequest.set(req, key);
      callback(null, true);
    }, () => callback(null, true));
  };

  /** Counts the connections of an engine.io server that uses `allowRequest`. */
  watch(engine: EngineLike): void {
    this.#engine = engine;
    const admission = this;
    // One listener for every connection, `this` being the connection: no
    // closure and no once-wrapper per connection (engine.io emits 'close' once).
    function onClose(this: object): void {
      const state = admission.#byConnection.get(this);
      if (!state) return;
      admission.#byConnection.delete(this);
      state.connections--;
      admission.#forgetIfIdle(state);
    }
    engine.on('connection', (conn) => {
      const key = this.#byRequest.get(conn.request) ?? addressKey(clientAddress(conn.request, this.#options.trustedProxies));
      releaseUpgradeResponse(conn.request.socket);
      conn.request = upgradeRequestStub(conn.request);
      // A polling connection upgraded later holds its upgrade request the same way.
      if (conn.transport?.name === 'polling') conn.once('upgrade', (transport) => releaseUpgradeResponse(transport.socket?._socket));
      this.#byConnection.set(conn, this.#open(key));
      conn.on('close', onClose);
    });
  }

  /**
   * Counts a connection that `allowRequest` admitted and that is served
   * outside engine.io (src/server/direct-websocket-server.ts); `left` must
   * follow when it closes.
   */
  admitted(req: IncomingMessage): AddressState {
    this.#direct++;
    return this.#open(this.#byRequest.get(req) ?? addressKey(clientAddress(req, this.#options.trustedProxies)));
  }

  /** The connection `admitted` counted has closed. */
  left(state: AddressState): void {
    this.#direct--;
    state.connections--;
    this.#forgetIfIdle(state);
  }

  #open(key: string): AddressState {
    let state = this.#states.get(key);
    if (!state) this.#states.set(key, (state = { key, connections: 0, pending: 0, blockedUntil: 0 }));
    state.connections++;
    return state;
  }

  /** The address state of an engine.io connection `watch` saw. */
  stateOf(conn: object): AddressState | undefined {
    return this.#byConnection.get(conn);
  }

  /** Counts one event of `state`; false when its address is over budget. */
  takeEvent(state: AddressState): boolean {
    if (state.blockedUntil !== 0) {
      if (performance.now() < state.blockedUntil) return false;
      state.blockedUntil = 0;
    }
    if (state.pending++ === 0) this.#dirty.add(state);
    if (state.pending >= this.#batch) this.#flush(state);
    return true;
  }

  /** Addresses with open connections on this node (for tests and health). */
  get addresses(): number {
    return this.#states.size;
  }

  close(): void {
    clearInterval(this.#timer);
  }

  #flushAll(): void {
    if (this.#dirty.size > 0) this.#flush(...this.#dirty);
  }

  /** Spends what `states` counted since they were last flushed, in one call to the budget's store. */
  #flush(...states: AddressState[]): void {
    const points = states.map((state) => {
      const spent = state.pending;
      state.pending = 0;
      this.#dirty.delete(state);
      return spent;
    });
    this.#eventBudget.spendEach(states.map((state) => state.key), points).then((blocked) => {
      const now = performance.now();
      for (let i = 0; i < states.length; i++) if (blocked[i]! > 0) states[i]!.blockedUntil = now + blocked[i]!;
    });
  }

  #forgetIfIdle(state: AddressState): void {
    if (state.connections > 0 || this.#states.get(state.key) !== state) return;
    // Spend what is left now: the budget remembers it, this node need not.
    if (state.pending > 0) this.#flush(state);
    this.#states.delete(state.key);
  }
}
