/**
 * The socket.io protocol endpoint: parses each event's argument forms,
 * validates them, calls the core, and maps the outcome to an ack and, for
 * failures, a `signalingError` event. No routing decision is made here.
 *
 * It serves two kinds of sockets the same way: socket.io's own, and those of
 * the direct websocket engine (src/server/direct-websocket-server.ts), which
 * call `opened`, `received` and `closed` themselves.
 * @module
 */
import type { Namespace, Socket } from 'socket.io';
import { z } from 'zod';
import { SignalingError } from '../core/signaling-error.js';
import type { SignalingCore, SocketSink } from '../core/signaling-core.js';
import type { JoinerUID, ShareName, SocketId } from '../core/types.js';
import type { ClientEventName, SignalingErrorBody } from '../protocol/events.js';
import { MAX_NAME_LENGTH, MAX_UID_LENGTH } from '../protocol/events.js';
import type { Logger } from './logger.js';
import { messageFitsIn } from './message-size.js';
import type { ServerMetrics } from './metrics.js';
import { RateLimiter, type Bucket } from './rate-limiter.js';
import type { SharePolicy } from '../core/share-policy.js';
import type { Admission, AddressState } from './admission.js';
import { handshakeToken, type Handshake, type ShareAuth } from './share-auth.js';
import { bufferedBytes, cutOff } from './slow-consumer.js';
import { DirectSocket } from './direct-socket.js';

type Ack = (result: unknown) => void;

const nameSchema = z.string().min(1).max(MAX_NAME_LENGTH);
const uidSchema = z.string().min(1).max(MAX_UID_LENGTH);
const shareOptionsSchema = z
  .object({
    ttl: z.number().int().positive().optional(),
    maxJoins: z.number().int().positive().optional(),
  })
  .nullish();
const shareArgs = z.union([
  z.tuple([]),
  z.tuple([nameSchema.nullish()]),
  z.tuple([nameSchema.nullish(), shareOptionsSchema]),
]);
const unshareArgs = z.union([z.tuple([]), z.tuple([nameSchema.nullish()])]);

export interface EndpointOptions {
  metrics: ServerMetrics;
  logger: Logger;
  maxMessageSize: number;
  rate: { rate: number; burst: number };
  /** Per-address limits (src/server/admission.ts); none when absent. */
  admission?: Admission | undefined;
  /** Share authorization (src/server/share-auth.ts); anyone may share when absent. */
  shareAuth?: ShareAuth | undefined;
  /**
   * Bytes held for a client that does not read its socket before it is
   * disconnected (see src/server/slow-consumer.ts).
   * @default unlimited
   */
  maxBufferedBytes?: number | undefined;
  /**
   * Put before socket.io ids to make the ids the core sees unique across a
   * cluster and routable to this node (src/cluster/node-id.ts). Clients keep
   * seeing the plain socket.io id.
   * @default ''
   */
  socketIdPrefix?: string | undefined;
}

/** What the endpoint needs of a socket, socket.io's or a DirectSocket. */
export interface ClientSocket {
  /** The id its client knows it by. */
  readonly id: string;
  /** Holds the endpoint's SocketData. */
  readonly data: unknown;
  emit(event: string, ...args: unknown[]): unknown;
  disconnect(close: true): unknown;
}

interface SocketData {
  /** The id the core knows the socket by: made once, not per event (see `opened`). */
  coreId: string;
  bucket: Bucket;
  address: AddressState | undefined;
  policy: SharePolicy | undefined;
}

/** Parsed request: what the core needs, and what error context to echo. */
interface Parsed {
  name?: ShareName | undefined;
  uid?: JoinerUID | undefined;
}

const sharerGoneMessage = 'The sharer you were routed to has disconnected; launch again to be routed afresh.';

export class SocketEndpoint {
  #core!: SignalingCore;
  readonly #metrics: ServerMetrics;
  readonly #logger: Logger;
  readonly #maxMessageSize: number;
  readonly #limiter: RateLimiter;
  readonly #admission: Admission | undefined;
  readonly #shareAuth: ShareAuth | undefined;
  readonly #maxBufferedBytes: number;
  readonly #prefix: string;
  #namespace: Namespace | undefined;
  #direct: ((id: string) => DirectSocket | undefined) | undefined;

  constructor(options: EndpointOptions) {
    this.#metrics = options.metrics;
    this.#logger = options.logger;
    this.#maxMessageSize = options.maxMessageSize;
    this.#limiter = new RateLimiter(options.rate);
    this.#admission = options.admission;
    this.#shareAuth = options.shareAuth;
    this.#maxBufferedBytes = options.maxBufferedBytes ?? Infinity;
    this.#prefix = options.socketIdPrefix ?? '';
  }

  /** The sink the core emits through: looks sockets up by id on demand. */
  readonly sink: SocketSink = {
    launchResponse: (id, uid, message) => this.#writable(id)?.emit('launchResponse', uid, message),
    answerResponse: (id, message) => this.#writable(id)?.emit('answerResponse', message),
    shareExpired: (id, name) => this.#writable(id)?.emit('shareExpired', name),
    sharerGone: (id, name, uid) => {
      this.#metrics.recordError('sharer-gone');
      const body: SignalingErrorBody = { code: 'sharer-gone', message: sharerGoneMessage, event: 'launch', name, joinerUID: uid };
      this.#writable(id)?.emit('signalingError', body);
    },
  };

  /** Starts serving `namespace` with `core`, which must emit through this.sink. */
  attach(namespace: Namespace, core: SignalingCore): void {
    this.#namespace = namespace;
    this.#core = core;
    const endpoint = this;
    // One set of listener functions for every socket: `this` is the socket,
    // so no closure is allocated per connection.
    const listeners: Record<ClientEventName, (this: Socket, ...args: unknown[]) => void> = {
      share(...args) {
        endpoint.#handle(this, 'share', args);
      },
      unshare(...args) {
        endpoint.#handle(this, 'unshare', args);
      },
      launch(...args) {
        endpoint.#handle(this, 'launch', args);
      },
      answer(...args) {
        endpoint.#handle(this, 'answer', args);
      },
    };
    function onDisconnect(this: Socket, reason: string): void {
      endpoint.closed(this, reason);
    }
    if (this.#shareAuth) {
      // Verified once, before 'connection', so every share of the socket
      // meets a settled policy and keeps its order with what follows it.
      namespace.use((socket, next) => {
        this.authorize(socket.handshake)!.then((policy) => {
          (socket.data as SocketData).policy = policy;
          next();
        }, next);
      });
    }
    namespace.on('connection', (socket: Socket) => {
      this.opened(socket, (socket.data as SocketData).policy, this.#admission?.stateOf(socket.conn));
      for (const event of Object.keys(listeners) as ClientEventName[]) socket.on(event, listeners[event]);
      socket.on('disconnect', onDisconnect);
    });
  }

  /** Also serves the sockets of the direct websocket engine, found by their client-facing id. */
  serveDirect(lookup: (id: string) => DirectSocket | undefined): void {
    this.#direct = lookup;
  }

  /**
   * The share policy of a connecting client, from its token; undefined
   * (rather than a Promise) when sharing needs no token.
   */
  authorize(handshake: Handshake): Promise<SharePolicy> | undefined {
    return this.#shareAuth?.policy(handshakeToken(handshake));
  }

  /** A socket has connected, with the policy `authorize` settled on. */
  opened(socket: ClientSocket, policy: SharePolicy | undefined, address: AddressState | undefined): void {
    const data = socket.data as SocketData;
    // A DirectSocket is its own bucket and holds its address already.
    if (socket instanceof DirectSocket) {
      this.#limiter.fill(socket, performance.now());
    } else {
      data.bucket = this.#limiter.bucket(performance.now());
      data.address = address;
    }
    // One flat string for the life of the socket: a concatenation made per
    // event would be flattened and hashed again on every lookup in the core.
    data.coreId = this.#prefix === '' ? socket.id : [this.#prefix, socket.id].join('');
    this.#core.attach(data.coreId, policy);
    this.#logger.debug({ socket: socket.id }, 'connected');
  }

  /** An event from a direct socket: `args` holds the event name, its arguments, then the ack if asked for. */
  received(socket: ClientSocket, args: unknown[]): void {
    const event = args.shift();
    if (event === 'share' || event === 'unshare' || event === 'launch' || event === 'answer') this.#handle(socket, event, args);
    // Like socket.io, an event with no listener is dropped without reply.
  }

  /** A socket `opened` has gone. */
  closed(socket: ClientSocket, reason: string): void {
    this.#logger.debug({ socket: socket.id, reason }, 'disconnected');
    this.#core.detach((socket.data as SocketData).coreId).catch((error: unknown) => this.#logger.error({ err: error }, 'cleanup after disconnect failed'));
  }

  #find(id: SocketId): ClientSocket | undefined {
    if (!id.startsWith(this.#prefix)) return undefined;
    const plain = this.#prefix === '' ? id : id.slice(this.#prefix.length);
    return this.#direct?.(plain) ?? this.#namespace?.sockets.get(plain);
  }

  /** The socket, unless it holds too much unread: then it is disconnected instead. */
  #writable(id: SocketId): ClientSocket | undefined {
    const socket = this.#find(id);
    return socket && this.#keepsUp(socket) ? socket : undefined;
  }

  #keepsUp(socket: ClientSocket): boolean {
    if (this.#maxBufferedBytes === Infinity) return true;
    const direct = socket instanceof DirectSocket;
    if ((direct ? socket.bufferedBytes() : bufferedBytes((socket as Socket).conn)) <= this.#maxBufferedBytes) return true;
    this.#metrics.slowConsumers.inc();
    this.#logger.warn({ socket: socket.id }, 'disconnecting a socket that does not read what it is sent');
    socket.disconnect(true);
    if (direct) socket.cutOff();
    else cutOff((socket as Socket).conn);
    return false;
  }

  #handle(socket: ClientSocket, event: ClientEventName, args: unknown[]): void {
    const ack = typeof args[args.length - 1] === 'function' ? (args.pop() as Ack) : undefined;
    const data = socket.data as SocketData;
    let verdict = this.#limiter.take(data.bucket, performance.now());
    if (verdict === 'allow' && data.address && !this.#admission!.takeEvent(data.address)) verdict = this.#limiter.refuse(data.bucket);
    if (verdict !== 'allow') {
      if (verdict === 'flood') {
        this.#logger.warn({ socket: socket.id, event }, 'disconnecting a socket that keeps flooding');
        socket.disconnect(true);
        return;
      }
      this.#fail(socket, event, ack, new SignalingError('rate-limited'), {});
      return;
    }
    if (event === 'launch' || event === 'answer') {
      this.#relay(socket, event, args, ack);
      return;
    }
    const parsed: Parsed = {};
    try {
      const outcome = this.#dispatch(socket, event, args, parsed);
      outcome.then(
        (result) => ack?.({ ok: true, ...result }),
        (error: unknown) => this.#fail(socket, event, ack, error, parsed),
      );
    } catch (error) {
      this.#fail(socket, event, ack, error, parsed);
    }
  }

  /** Validates share / unshare arguments and hands them to the core. Throws SignalingError on bad input. */
  #dispatch(socket: ClientSocket, event: 'share' | 'unshare', args: unknown[], parsed: Parsed): Promise<object> {
    switch (event) {
      case 'share': {
        // share(options) is accepted as share(undefined, options).
        if (args.length === 1 && typeof args[0] === 'object' && args[0] !== null) args.unshift(undefined);
        const [name, options] = parse(shareArgs, args, 'share(name?, options?, ack?)');
        parsed.name = name ?? undefined;
        return this.#core.share((socket.data as SocketData).coreId, name ?? undefined, { ttl: options?.ttl, maxJoins: options?.maxJoins });
      }
      case 'unshare': {
        const [name] = parse(unshareArgs, args, 'unshare(name?, ack?)');
        parsed.name = name ?? undefined;
        return this.#core.unshare((socket.data as SocketData).coreId, name ?? undefined).then((names) => ({ names }));
      }
    }
  }

  /**
   * launch and answer, the hot path: the 3-argument form (name, joinerUID,
   * message) or the 2-argument one: (name, message) for launch, (joinerUID,
   * message) for answer. No Promise, closure or result object is made when
   * the core relays at once and no ack is asked for.
   */
  #relay(socket: ClientSocket, event: 'launch' | 'answer', args: unknown[], ack: Ack | undefined): void {
    const launch = event === 'launch';
    const usage = launch ? launchUsage : answerUsage;
    let name: ShareName | undefined;
    let uid: JoinerUID | undefined;
    let joinerUID: JoinerUID;
    let outcome: Promise<void> | undefined;
    try {
      let message: unknown;
      if (args.length === 3) {
        name = checkName(args[0], usage);
        uid = checkUid(args[1], usage);
        message = args[2];
      } else if (args.length === 2) {
        if (launch) name = checkName(args[0], usage);
        else uid = checkUid(args[0], usage);
        message = args[1];
      } else {
        throw new SignalingError('bad-request', `expected ${usage}, got ${args.length} argument(s)`);
      }
      if (message === undefined) throw new SignalingError('bad-request', `expected ${usage}: message is missing`);
      if (!messageFitsIn(message, this.#maxMessageSize)) {
        throw new SignalingError('too-large', `message exceeds the maximum of ${this.#maxMessageSize} bytes`);
      }
      const id = (socket.data as SocketData).coreId;
      joinerUID = uid ?? socket.id;
      outcome = launch ? this.#core.relayLaunch(id, name!, joinerUID, message) : this.#core.relayAnswer(id, name, uid!, message);
    } catch (error) {
      this.#fail(socket, event, ack, error, { name, uid });
      return;
    }
    if (ack === undefined) {
      outcome?.catch((error: unknown) => this.#fail(socket, event, ack, error, { name, uid }));
      return;
    }
    const acknowledge = (): void => {
      // The relay may be waiting to be written with others (cluster mode): it
      // leaves before the ack does.
      this.#core.flushSends();
      ack(launch ? { ok: true, joinerUID } : { ok: true });
    };
    if (outcome === undefined) acknowledge();
    else outcome.then(acknowledge, (error: unknown) => this.#fail(socket, event, ack, error, { name, uid }));
  }

  #fail(socket: ClientSocket, event: ClientEventName, ack: Ack | undefined, error: unknown, parsed: Parsed): void {
    let failure: SignalingError;
    if (error instanceof SignalingError) {
      failure = error;
    } else {
      // Log the error, never the arguments: they may carry SDP.
      this.#logger.error({ err: error, event, socket: socket.id }, 'request failed');
      failure = new SignalingError('internal');
    }
    this.#metrics.recordError(failure.code);
    const body: SignalingErrorBody = { code: failure.code, message: failure.message, event };
    if (parsed.name !== undefined) body.name = parsed.name;
    if (parsed.uid !== undefined) body.joinerUID = parsed.uid;
    if (this.#keepsUp(socket)) socket.emit('signalingError', body);
    ack?.({ ok: false, error: { code: failure.code, message: failure.message } });
  }
}

const launchUsage = 'launch(name, joinerUID, message) or launch(name, message)';
const answerUsage = 'answer(name, joinerUID, message) or answer(joinerUID, message)';

// The schemas' own conditions, checked by hand first on the hot path; zod
// runs (and words the error) only for a value that fails them.
const checkName = (value: unknown, usage: string): ShareName =>
  typeof value === 'string' && value.length >= 1 && value.length <= MAX_NAME_LENGTH ? value : parse(nameSchema, value, usage, 'name');
const checkUid = (value: unknown, usage: string): JoinerUID =>
  typeof value === 'string' && value.length >= 1 && value.length <= MAX_UID_LENGTH ? value : parse(uidSchema, value, usage, 'joinerUID');

function parse<T extends z.ZodType>(schema: T, value: unknown, usage: string, what?: string): z.output<T> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  const where = what ?? (issue?.path.length ? `argument ${String(issue.path[0])}` : 'arguments');
  throw new SignalingError('bad-request', `expected ${usage}: ${where}: ${issue?.message ?? 'invalid'}`);
}
