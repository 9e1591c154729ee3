/**
 * The registry of a cluster, in Redis: every check-and-update is one Lua
 * script (src/cluster/redis-scripts.ts), so nodes never race. It also keeps
 * this node visible to the others: a heartbeat renews the node's liveness
 * key; a node whose key lapsed is dead, its sharers are skipped at once and
 * the survivors reap what it registered.
 *
 * When Redis cannot be reached, operations fail at once (or after the
 * command timeout) with `internal`, never hang. When Redis comes back
 * without this node's registrations (a restart, or this node was taken for
 * dead), the node registers again what its sockets still hold.
 * @module
 */
import type { Redis } from 'ioredis';
import type { Registry, RegistryCounts, RegistrySnapshot } from '../core/registry.js';
import { SignalingError } from '../core/signaling-error.js';
import type { JoinerUID, Route, RouteOutcome, RouteRef, ShareName, ShareTerms, SocketId } from '../core/types.js';
import type { NodeId } from './node-id.js';
import { atTurnEnd, corkTurn } from './redis-cork.js';
import { SCRIPTS, type ScriptName } from './redis-scripts.js';

export interface RedisRegistryOptions {
  /**
   * A connected ioredis client for commands (it may be shared with the
   * delivery's publisher). The registry never closes it; it should be made
   * with `enableOfflineQueue: false` and a `commandTimeout`, so nothing waits
   * on a Redis that is away.
   */
  redis: Redis;
  /** This node: ids of its sockets start with it (see node-id.ts). */
  nodeId: NodeId;
  /**
   * Every key starts with this.
   * @default 'sigserve:'
   */
  prefix?: string;
  /**
   * Milliseconds between heartbeats.
   * @default 2000
   */
  heartbeatInterval?: number;
  /**
   * Milliseconds without a heartbeat after which a node counts as dead:
   * its sharers get no new joiners and the survivors remove its keys.
   * @default 6000
   */
  nodeTimeout?: number;
  /**
   * Milliseconds keys outlive the share they hold, so a node that dies with
   * no survivor to reap it still leaves nothing behind for long.
   * @default 60000
   */
  keyGrace?: number;
  /**
   * Lifetime of a route put back after Redis lost it, in ms (the share it
   * leads to is on another node, so its expiry is unknown here).
   * @default 3600000
   */
  restoredRouteTtl?: number;
  /** Another node was found dead: every socket it held is gone. */
  onNodeGone?: (node: NodeId) => void;
  /** What this node's sockets hold, to register again after Redis lost it. */
  snapshot?: () => RegistrySnapshot;
  /** Redis state changed (for logs): `up` after a good heartbeat, `down` after a failed one. */
  onStateChange?: (state: 'up' | 'down', detail: { error?: unknown; restored?: boolean }) => void;
  /** A background step (heartbeat, reap, restore, retry) failed. */
  onError?: (operation: string, error: unknown) => void;
}

/** Readiness as /healthz and /readyz report it. */
export interface RedisRegistryState {
  node: NodeId;
  /** ioredis connection status: `ready` when commands can be sent. */
  connection: string;
  /** Connected and the last heartbeat succeeded within the node timeout. */
  ready: boolean;
  /** Milliseconds since the last good heartbeat, or null before the first. */
  lastHeartbeatAgo: number | null;
  /** Other nodes currently known dead and not yet reaped. */
  deadNodes: number;
}

type ScriptArg = string | number;
type Scripted = { [K in ScriptName]: (...args: ScriptArg[]) => Promise<unknown> };

/** A route waiting for its script run's reply. */
interface RouteWaiter {
  resolve(outcome: RouteOutcome): void;
  reject(error: unknown): void;
  evicted: boolean;
}

/** Registrations removed per reap script run: keeps each run short. */
const REAP_BATCH = 500;
/** Restore commands per pipeline round trip. */
const RESTORE_BATCH = 200;
/** Routes per script run at most: keeps each run short. */
const ROUTE_BATCH = 128;
/** Failed removals remembered for retry; past it the keys' expiries clean up. */
const MAX_RETRIES = 100_000;

const unavailable = (): SignalingError =>
  new SignalingError('internal', 'The cluster registry (Redis) cannot be reached right now; retry shortly.');

export class RedisRegistry implements Registry {
  readonly nodeId: NodeId;
  readonly #redis: Redis;
  readonly #scripts: Scripted;
  readonly #prefix: string;
  readonly #interval: number;
  readonly #timeout: number;
  readonly #grace: number;
  readonly #restoredRouteTtl: number;
  /** How long a dead node's registration sets stay for the survivors to reap. */
  readonly #regTtl: number;
  readonly #options: RedisRegistryOptions;
  /** Dead nodes already reported through onNodeGone. */
  readonly #gone = new Set<NodeId>();
  /** Removals that failed, retried after the next good heartbeat. */
  readonly #retries = new Map<string, () => Promise<void>>();
  #timer: NodeJS.Timeout | undefined;
  #beating: Promise<void> | undefined;
  #lastBeat: number | undefined;
  #up = false;
  #needsRestore = false;
  /** This node set its mark last time it looked (it had registrations). */
  #registered = false;
  /** No node is declared dead before this time (see #onReady). */
  #quietUntil = 0;
  #closed = false;
  /** Routes queued for the next script run: their fields in one argument (see redis-scripts.ts), and who waits. */
  #routes: { batch: string; waiters: RouteWaiter[] } = { batch: '', waiters: [] };

  constructor(options: RedisRegistryOptions) {
    this.#options = options;
    this.#redis = options.redis;
    this.nodeId = options.nodeId;
    this.#prefix = options.prefix ?? 'sigserve:';
    this.#interval = options.heartbeatInterval ?? 2000;
    this.#timeout = options.nodeTimeout ?? 6000;
    this.#grace = options.keyGrace ?? 60_000;
    this.#restoredRouteTtl = options.restoredRouteTtl ?? 3_600_000;
    this.#regTtl = Math.max(3 * this.#timeout, this.#timeout + 10 * this.#interval);
    for (const [name, lua] of Object.entries(SCRIPTS)) {
      if (!(name in this.#redis)) this.#redis.defineCommand(name, { numberOfKeys: 0, lua });
    }
    this.#scripts = this.#redis as unknown as Scripted;
    // A reconnect may follow a Redis restart: check at once, not a beat later.
    this.#redis.on('ready', this.#onReady);
  }

  /** Sends the first heartbeat (failing if Redis cannot be reached) and starts beating. */
  async start(): Promise<void> {
    await this.#beat(true);
    this.#schedule();
  }

  state(): RedisRegistryState {
    const ago = this.#lastBeat === undefined ? null : Date.now() - this.#lastBeat;
    const ready = this.#redis.status === 'ready' && this.#up && ago !== null && ago < this.#timeout;
    return { node: this.nodeId, connection: this.#redis.status, ready, lastHeartbeatAgo: ago, deadNodes: this.#gone.size };
  }

  async addShare(name: ShareName, sharer: SocketId, terms: ShareTerms): Promise<void> {
    this.#retries.delete(shareKey(name, sharer));
    const existed = (await this.#call(
      'sigserveAddShare',
      name,
      sharer,
      terms.expiresAt,
      terms.maxJoins ?? -1,
      this.nodeId,
      this.#regTtl,
      this.#grace,
      0,
      this.#timeout,
    )) as number;
    this.#marked(existed);
  }

  async removeShare(name: ShareName, sharer: SocketId): Promise<void> {
    const run = async (): Promise<void> => {
      await this.#call('sigserveRemoveShare', name, sharer, this.nodeId);
    };
    await this.#retryOnFailure(shareKey(name, sharer), run);
  }

  /**
   * Queued for the route script run at the end of this turn (or sooner,
   * see #sendRoutes), with the eviction included (see Registry.route).
   */
  route(name: ShareName, uid: JoinerUID, joiner: SocketId, now: number, evict?: RouteRef): Promise<RouteOutcome> {
    this.#retries.delete(routeKey(name, uid, joiner));
    return new Promise<RouteOutcome>((resolve, reject) => {
      const queued = this.#routes;
      if (queued.waiters.length === 0) atTurnEnd(this.#sendRoutes);
      queued.batch +=
        field(name) + field(uid) + field(joiner) + field(String(Math.round(now))) + field(String((Math.random() * 4294967296) >>> 0)) + field(evict?.name ?? '') + field(evict?.uid ?? '');
      queued.waiters.push({ resolve, reject, evicted: evict !== undefined });
      if (queued.waiters.length >= ROUTE_BATCH) this.#sendRoutes();
    });
  }

  /**
   * Sends the queued routes in one script run. Called at the end of the
   * turn, and before any other command of the registry's, so Redis sees
   * every command in the order the core issued it (a route, then the
   * removal of that route, must not swap).
   */
  readonly #sendRoutes = (): void => {
    const { batch, waiters } = this.#routes;
    if (waiters.length === 0) return;
    this.#routes = { batch: '', waiters: [] };
    corkTurn(this.#redis);
    this.#scripts.sigserveRoute(this.#prefix, this.nodeId, this.#regTtl, this.#grace, this.#timeout, batch).then(
      (reply) => {
        const lines = (reply as string).split('\n');
        for (let i = 0; i < waiters.length; i++) {
          const waiter = waiters[i]!;
          try {
            waiter.resolve(this.#routeOutcome(lines[i], waiter.evicted));
          } catch (error) {
            waiter.reject(error);
          }
        }
      },
      (error: unknown) => {
        const failure = this.#failed(error);
        for (const waiter of waiters) waiter.reject(failure);
      },
    );
  };

  /** One line of the route script's reply (see redis-scripts.ts). */
  #routeOutcome(line: string | undefined, evicted: boolean): RouteOutcome {
    if (line !== undefined && line.charCodeAt(0) === 0x31 /* '1' */ && line.length > 3) {
      this.#marked(line.charCodeAt(2) === 0x31 ? 1 : 0);
      const sharer = line.slice(3);
      const fresh = line.charCodeAt(1) === 0x31;
      if (evicted) return { ok: true, sharer, fresh, evicted: true };
      return { ok: true, sharer, fresh };
    }
    const code = line?.slice(1);
    if (line?.charCodeAt(0) !== 0x30 || (code !== 'no-sharer' && code !== 'share-full' && code !== 'uid-taken')) throw new Error(`unexpected route reply ${line}`);
    return { ok: false, code };
  }

  async lookupRoute(name: ShareName, uid: JoinerUID): Promise<Route | undefined> {
    let value: Buffer | null;
    this.#sendRoutes();
    try {
      value = await this.#redis.hgetBuffer(`${this.#prefix}r:${name}`, uid);
    } catch (error) {
      throw this.#failed(error);
    }
    return value === null ? undefined : decodeRoute(value);
  }

  async removeRoute(name: ShareName, uid: JoinerUID, joiner: SocketId): Promise<void> {
    const run = async (): Promise<void> => {
      await this.#call('sigserveRemoveRoute', name, uid, joiner, this.nodeId);
    };
    await this.#retryOnFailure(routeKey(name, uid, joiner), run);
  }

  /** Registrations of every live (or not yet reaped) node of the cluster. */
  async counts(): Promise<RegistryCounts> {
    const [shares, routes] = (await this.#call('sigserveCounts')) as [number, number];
    return { shares, routes };
  }

  /**
   * Stops the heartbeat and removes whatever this node still has registered,
   * its liveness key included, so the others stop routing to it at once.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#sendRoutes();
    clearTimeout(this.#timer);
    this.#redis.off('ready', this.#onReady);
    await this.#beating?.catch(() => undefined);
    if (this.#redis.status !== 'ready') return;
    try {
      for (let round = 0; round < 1000; round++) {
        const left = (await this.#scripts.sigserveReap(this.#prefix, this.nodeId, REAP_BATCH, 1)) as number;
        if (left === 0) break;
      }
    } catch (error) {
      this.#options.onError?.('leave', error);
    }
  }

  readonly #onReady = (): void => {
    if (this.#lastBeat === undefined || this.#closed) return;
    // Back from an outage during which every node's mark may have lapsed:
    // give the others one node timeout to beat again before calling them dead.
    this.#quietUntil = Date.now() + this.#timeout;
    this.#needsRestore = true;
    this.#kick();
  };

  /**
   * After a registration: if this node's mark had vanished although it had
   * registrations, Redis lost them (or reaped us as dead): restore soon.
   */
  #marked(existed: number): void {
    if (existed === 0 && this.#registered) {
      this.#needsRestore = true;
      queueMicrotask(() => this.#kick());
    }
    this.#registered = true;
  }

  #schedule(): void {
    if (this.#closed) return;
    this.#timer = setTimeout(() => this.#kick(), this.#interval);
    this.#timer.unref();
  }

  #kick(): void {
    if (this.#beating || this.#closed) return;
    clearTimeout(this.#timer);
    this.#beating = this.#beat(false)
      .catch(() => undefined)
      .finally(() => {
        this.#beating = undefined;
        this.#schedule();
      });
  }

  async #beat(first: boolean): Promise<void> {
    let existed: number;
    let has: number;
    let dead: NodeId[];
    try {
      [existed, has, dead] = (await this.#scripts.sigserveBeat(this.#prefix, this.nodeId, this.#timeout, this.#regTtl)) as [number, number, NodeId[]];
    } catch (error) {
      if (this.#up || first) this.#options.onStateChange?.('down', { error });
      this.#up = false;
      throw error;
    }
    this.#lastBeat = Date.now();
    const wasUp = this.#up;
    this.#up = true;
    // Our mark was gone although we had registrations: Redis lost its data,
    // or the others took us for dead and reaped us. Either way, register
    // again what our sockets hold.
    const restore = !first && ((existed === 0 && this.#registered) || this.#needsRestore);
    this.#registered = has > 0;
    if (restore) {
      try {
        await this.#restore();
        this.#needsRestore = false;
      } catch (error) {
        this.#needsRestore = true;
        this.#options.onError?.('restore', error);
      }
    }
    if (!wasUp && !first) this.#options.onStateChange?.('up', { restored: restore });
    for (const node of [...this.#gone]) if (!dead.includes(node)) this.#gone.delete(node);
    if (Date.now() < this.#quietUntil) dead = [];
    for (const node of dead) {
      if (!this.#gone.has(node)) {
        this.#gone.add(node);
        this.#options.onNodeGone?.(node);
      }
      await this.#reap(node);
    }
    await this.#runRetries();
  }

  async #reap(node: NodeId): Promise<void> {
    try {
      // Bounded per beat: a huge dead node is reaped over several beats.
      for (let round = 0; round < 20; round++) {
        const left = (await this.#scripts.sigserveReap(this.#prefix, node, REAP_BATCH, 0)) as number;
        if (left <= 0) return;
      }
    } catch (error) {
      this.#options.onError?.('reap', error);
    }
  }

  async #restore(): Promise<void> {
    const snapshot = this.#options.snapshot?.();
    if (!snapshot) return;
    const now = Date.now();
    type Step = [ScriptName, ...ScriptArg[]];
    const steps: Step[] = [];
    for (const s of snapshot.shares) {
      if (s.terms.expiresAt <= now) continue;
      steps.push([
        'sigserveAddShare',
        this.#prefix,
        s.name,
        s.sharer,
        s.terms.expiresAt,
        s.terms.maxJoins ?? -1,
        this.nodeId,
        this.#regTtl,
        this.#grace,
        s.joins,
        this.#timeout,
      ]);
    }
    for (const r of snapshot.routes) {
      steps.push([
        'sigserveRestoreRoute',
        this.#prefix,
        r.name,
        r.uid,
        r.route.joiner,
        r.route.sharer,
        now + this.#restoredRouteTtl,
        this.nodeId,
        this.#regTtl,
        this.#timeout,
      ]);
    }
    for (let i = 0; i < steps.length; i += RESTORE_BATCH) {
      const pipeline = this.#redis.pipeline() as unknown as { exec(): Promise<[Error | null, unknown][] | null> } & Record<
        string,
        (...args: ScriptArg[]) => unknown
      >;
      for (const [script, ...args] of steps.slice(i, i + RESTORE_BATCH)) pipeline[script]!(...args);
      const results = await pipeline.exec();
      const failure = results?.find(([error]) => error !== null)?.[0];
      if (failure) throw failure;
    }
  }

  async #retryOnFailure(key: string, run: () => Promise<void>): Promise<void> {
    try {
      await run();
      this.#retries.delete(key);
    } catch (error) {
      // Still registered in Redis though gone here: try again once Redis is back.
      if (this.#retries.size < MAX_RETRIES) this.#retries.set(key, run);
      throw error;
    }
  }

  async #runRetries(): Promise<void> {
    for (const [key, run] of [...this.#retries]) {
      try {
        await run();
        if (this.#retries.get(key) === run) this.#retries.delete(key);
      } catch (error) {
        this.#options.onError?.('retry', error);
        return;
      }
    }
  }

  async #call(script: ScriptName, ...args: ScriptArg[]): Promise<unknown> {
    this.#sendRoutes();
    try {
      // Nobody sees a script's effect before its reply: it may wait for the turn's other commands.
      corkTurn(this.#redis);
      return await this.#scripts[script](this.#prefix, ...args);
    } catch (error) {
      throw this.#failed(error);
    }
  }

  #failed(error: unknown): Error {
    // Redis is reachable but refused the command: a bug, not an outage.
    if (this.#redis.status === 'ready' && error instanceof Error && error.name === 'ReplyError') return error;
    return unavailable();
  }
}

/** `<byte length>:<text>`, as the scripts' `dec` reads it. */
const field = (text: string): string => `${Buffer.byteLength(text)}:${text}`;

const shareKey = (name: ShareName, sharer: SocketId): string => `s${name.length}:${name}${sharer}`;
const routeKey = (name: ShareName, uid: JoinerUID, joiner: SocketId): string => `r${name.length}:${name}${uid.length}:${uid}${joiner}`;

/** `<byte length>:<joiner><sharer>`, as the route script writes it. */
function decodeRoute(value: Buffer): Route {
  const colon = value.indexOf(0x3a);
  const length = Number(value.subarray(0, colon).toString('latin1'));
  const start = colon + 1;
  return {
    joiner: value.subarray(start, start + length).toString('utf8'),
    sharer: value.subarray(start + length).toString('utf8'),
  };
}
