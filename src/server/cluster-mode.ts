/**
 * Cluster mode's wiring (REDIS_URL set): the ioredis clients, the Redis
 * registry and delivery, and the glue that tells the core about dead nodes
 * and lets the registry restore what the core holds. Kept out of server.ts
 * so memory mode never loads a Redis client.
 *
 * Why no socket.io Redis adapter: the core addresses one socket at a time
 * through its Delivery and never broadcasts to rooms, so the adapter's
 * room fan-out would add a hop and a second channel scheme for nothing.
 * @module
 */
import { Redis, type RedisOptions } from 'ioredis';
import type { SignalingCore } from '../core/signaling-core.js';
import { mintNodeId, nodeOf, socketIdPrefix, type NodeId } from '../cluster/node-id.js';
import { RedisDelivery } from '../cluster/redis-delivery.js';
import { readRedisDirectly } from '../cluster/redis-reads.js';
import { RedisRegistry, type RedisRegistryState } from '../cluster/redis-registry.js';
import type { Config } from './config.js';
import type { Logger } from './logger.js';

export interface ClusterState extends RedisRegistryState {
  /** Frames published to this node reach it: its subscriber is connected and subscribed. */
  listening: boolean;
  /** Direct links this node dialed to other nodes that are open (see cluster/node-links.ts). */
  links: number;
}

export interface ClusterMode {
  readonly nodeId: NodeId;
  readonly socketIdPrefix: string;
  readonly redis: Redis;
  readonly registry: RedisRegistry;
  readonly delivery: RedisDelivery;
  /** Connects, subscribes and sends the first heartbeat; fails when Redis cannot be reached. */
  start(): Promise<void>;
  /** The registry's state, and whether this node's channel is subscribed (`ready` needs both). */
  state(): ClusterState;
  /** Removes this node's registrations (after the core detached every socket) and disconnects. */
  close(): Promise<void>;
}

/** The URL without its password, for logs and errors. */
export function redactRedisUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return 'redis://(unparsable)';
  }
}

/** `core` is read lazily: the core is built after the registry it uses. */
export function createClusterMode(config: Config, logger: Logger, core: () => SignalingCore): ClusterMode {
  const url = config.redisUrl!;
  const shownUrl = redactRedisUrl(url);
  const nodeId = mintNodeId();
  const log = logger.child({ node: nodeId });
  const options: RedisOptions = {
    lazyConnect: true,
    connectionName: `sigserve-${nodeId}`,
    // Nothing waits on a Redis that is away: commands fail at once while
    // disconnected, in-flight ones when the link drops or after the timeout.
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    autoResendUnfulfilledCommands: false,
    commandTimeout: config.redisCommandTimeout,
    connectTimeout: Math.max(1000, config.redisCommandTimeout),
    retryStrategy: (attempt) => Math.min(50 * 2 ** Math.min(attempt, 5), 1000),
  };
  const redis = new Redis(url, options);
  // The subscriber only subscribes; it may queue its SUBSCRIBE until connected.
  const subscriber = new Redis(url, { ...options, connectionName: `sigserve-${nodeId}-sub`, enableOfflineQueue: true, commandTimeout: undefined });
  readRedisDirectly(redis);
  readRedisDirectly(subscriber);
  let outage = false;
  const onError = (error: Error): void => {
    // Reconnect attempts repeat the same error many times a second: log the first.
    if (outage) return;
    outage = true;
    log.error({ err: error, redis: shownUrl }, 'redis connection error');
  };
  redis.on('error', onError);
  subscriber.on('error', onError);
  redis.on('ready', () => {
    if (outage) log.info({ redis: shownUrl }, 'redis connection restored');
    outage = false;
  });

  const registry = new RedisRegistry({
    redis,
    nodeId,
    prefix: config.redisPrefix,
    heartbeatInterval: config.heartbeatInterval,
    nodeTimeout: config.nodeTimeout,
    onNodeGone: (node) => {
      log.warn({ deadNode: node }, 'node stopped heartbeating: its sockets are gone');
      delivery.forgetNode(node);
      core().peersGone((socket) => nodeOf(socket) === node);
    },
    snapshot: () => core().snapshot(),
    onStateChange: (state, detail) => {
      if (state === 'down') log.error({ err: detail.error }, 'cluster registry unreachable: requests fail with internal until it is back');
      else log.info({ restored: detail.restored ?? false }, 'cluster registry reachable again');
    },
    onError: (operation, error) => log.warn({ err: error, operation }, 'cluster background step failed'),
  });
  const delivery = new RedisDelivery({
    publisher: redis,
    subscriber,
    nodeId,
    prefix: config.redisPrefix,
    onDrop: (reason, error) => log.debug({ reason, err: error }, 'cluster message dropped'),
    onLinkChange: (peer, open, reason) => {
      if (open) log.info({ peerNode: peer }, 'cluster link open');
      else log.info({ peerNode: peer, reason }, 'cluster link closed: messages to that node go over Redis');
    },
    links:
      config.clusterLinkHost === 'off'
        ? undefined
        : { host: config.clusterLinkHost, port: config.clusterLinkPort },
  });

  return {
    nodeId,
    socketIdPrefix: socketIdPrefix(nodeId),
    redis,
    registry,
    delivery,
    async start() {
      try {
        await Promise.all([redis.connect(), subscriber.connect()]);
        await delivery.start();
        await registry.start();
      } catch (error) {
        redis.disconnect();
        subscriber.disconnect();
        throw new Error(`cannot reach Redis at ${shownUrl}: ${error instanceof Error ? error.message : String(error)}`);
      }
      log.info({ redis: shownUrl, prefix: config.redisPrefix, link: delivery.linkAddress }, 'cluster node joined');
    },
    state: () => {
      const state = registry.state();
      const listening = delivery.listening;
      return { ...state, listening, links: delivery.openLinks, ready: state.ready && listening };
    },
    async close() {
      await delivery.close();
      await registry.close();
      await Promise.all([quit(redis), quit(subscriber)]);
    },
  };
}

async function quit(client: Redis): Promise<void> {
  if (client.status === 'ready') {
    await client.quit().catch(() => client.disconnect());
  } else {
    client.disconnect();
  }
}
