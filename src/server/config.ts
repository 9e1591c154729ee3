/**
 * Every setting, once: its environment variable, CLI flag, default, help
 * text and validation. `loadConfig` turns env and argv into one frozen,
 * typed object, failing once with every problem listed. Nothing else in the
 * project reads process.env.
 * @module
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { z } from 'zod';
import { parseTrustedProxies } from './client-address.js';
import { ShareAuth, type ShareAuthOptions } from './share-auth.js';

const LOG_LEVELS = ['debug', 'info', 'warn', 'error'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

const int = (min: number, max = Number.MAX_SAFE_INTEGER) => z.coerce.number().int().min(min).max(max);
const optionalText = z
  .string()
  .optional()
  .transform((v) => (v === '' ? undefined : v));

/** The table every other part of the configuration derives from. */
const SETTINGS = {
  port: { env: 'PORT', flag: 'port', default: '5000', help: 'TCP port to listen on (0 picks a free one)', schema: int(0, 65535) },
  host: { env: 'HOST', flag: 'host', default: '', help: 'Address to listen on (empty: every interface)', schema: z.string() },
  defaultTtl: {
    env: 'SHARE_TTL_DEFAULT',
    flag: 'share-ttl-default',
    default: '600000',
    help: 'Lifetime of a share that asks for none, ms',
    schema: int(1),
  },
  maxTtl: { env: 'SHARE_TTL_MAX', flag: 'share-ttl-max', default: '86400000', help: 'Longest share lifetime granted, ms', schema: int(1) },
  maxMessageSize: {
    env: 'MAX_MESSAGE_SIZE',
    flag: 'max-message-size',
    default: '65536',
    help: 'Largest launch/answer message, bytes',
    schema: int(1, 64 * 1024 * 1024),
  },
  maxSharesPerSocket: {
    env: 'MAX_SHARES_PER_SOCKET',
    flag: 'max-shares-per-socket',
    default: '16',
    help: 'Names one socket may share at once',
    schema: int(1),
  },
  maxRoutesPerSocket: {
    env: 'MAX_ROUTES_PER_SOCKET',
    flag: 'max-routes-per-socket',
    default: '64',
    help: 'Joins one socket may hold open at once (oldest dropped past it)',
    schema: int(1),
  },
  rateLimit: {
    env: 'RATE_LIMIT',
    flag: 'rate-limit',
    default: '200',
    help: 'Events per second one socket may send, sustained',
    schema: int(1),
  },
  rateBurst: {
    env: 'RATE_BURST',
    flag: 'rate-burst',
    default: '400',
    help: 'Events one socket may send in a burst above the sustained rate',
    schema: int(1),
  },
  addressEventRate: {
    env: 'ADDRESS_EVENT_RATE',
    flag: 'address-event-rate',
    default: '5000',
    help: 'Events per second all sockets of one client address may send, over 10 s windows (cluster-wide)',
    schema: int(1),
  },
  addressConnectRate: {
    env: 'ADDRESS_CONNECT_RATE',
    flag: 'address-connect-rate',
    default: '50',
    help: 'New connections per second one client address may open, over 10 s windows (cluster-wide)',
    schema: int(1),
  },
  maxConnections: {
    env: 'MAX_CONNECTIONS',
    flag: 'max-connections',
    default: '50000',
    help: 'Open connections on this node',
    schema: int(1),
  },
  maxConnectionsPerAddress: {
    env: 'MAX_CONNECTIONS_PER_ADDRESS',
    flag: 'max-connections-per-address',
    default: '1000',
    help: 'Open connections from one client address (IPv6: one /64) on this node',
    schema: int(1),
  },
  maxJoinsPerShare: {
    env: 'MAX_JOINS_PER_SHARE',
    flag: 'max-joins-per-share',
    default: '10000',
    help: 'Joiners one share admits over its life (and the most maxJoins may ask)',
    schema: int(1),
  },
  maxPendingPerSocket: {
    env: 'MAX_PENDING_PER_SOCKET',
    flag: 'max-pending-per-socket',
    default: '128',
    help: 'Launches of one socket waiting to be routed at once',
    schema: int(1),
  },
  maxBufferedBytes: {
    env: 'MAX_BUFFERED_BYTES',
    flag: 'max-buffered-bytes',
    default: '4194304',
    help: 'Bytes held for a client that does not read before it is disconnected',
    schema: int(1024),
  },
  trustedProxies: {
    env: 'TRUSTED_PROXIES',
    flag: 'trusted-proxies',
    default: '',
    help: 'Proxies whose X-Forwarded-For is believed: addresses, CIDR ranges or loopback, comma-separated',
    schema: z.string(),
  },
  authJwtSecret: {
    env: 'AUTH_JWT_SECRET',
    flag: 'auth-jwt-secret',
    default: '',
    help: 'HMAC secret (32+ characters): only clients with a token signed by it may share',
    schema: optionalText,
  },
  authJwtPublicKey: {
    env: 'AUTH_JWT_PUBLIC_KEY',
    flag: 'auth-jwt-public-key',
    default: '',
    help: 'PEM public key (file path or PEM text): only clients with a token signed by its private key may share',
    schema: optionalText,
  },
  authJwtIssuer: { env: 'AUTH_JWT_ISSUER', flag: 'auth-jwt-issuer', default: '', help: 'Required iss claim of share tokens', schema: optionalText },
  authJwtAudience: { env: 'AUTH_JWT_AUDIENCE', flag: 'auth-jwt-audience', default: '', help: 'Required aud claim of share tokens', schema: optionalText },
  wsEngine: {
    env: 'WS_ENGINE',
    flag: 'ws-engine',
    default: 'direct',
    help: 'What serves clients that open a websocket directly: direct (a lean engine on ws) or socket.io',
    schema: z.enum(['direct', 'socket.io']),
  },
  pingInterval: {
    env: 'PING_INTERVAL',
    flag: 'ping-interval',
    default: '25000',
    help: 'Time between heartbeats the server sends each client, ms',
    schema: int(100, 600_000),
  },
  pingTimeout: {
    env: 'PING_TIMEOUT',
    flag: 'ping-timeout',
    default: '20000',
    help: 'Time a client has to answer a heartbeat before it is disconnected, ms',
    schema: int(100, 600_000),
  },
  corsOrigins: {
    env: 'CORS_ORIGINS',
    flag: 'cors-origins',
    default: '*',
    help: 'Allowed browser origins, comma-separated (* for any)',
    schema: z.string().min(1),
  },
  logLevel: { env: 'LOG_LEVEL', flag: 'log-level', default: 'info', help: `Log level: ${LOG_LEVELS.join(', ')}`, schema: z.enum(LOG_LEVELS) },
  tlsCert: { env: 'TLS_CERT', flag: 'tls-cert', default: '', help: 'PEM certificate file; with --tls-key serves HTTPS/WSS', schema: optionalText },
  tlsKey: { env: 'TLS_KEY', flag: 'tls-key', default: '', help: 'PEM private key file for --tls-cert', schema: optionalText },
  shutdownTimeout: {
    env: 'SHUTDOWN_TIMEOUT',
    flag: 'shutdown-timeout',
    default: '5000',
    help: 'Longest wait for a graceful shutdown, ms',
    schema: int(0),
  },
  redisUrl: {
    env: 'REDIS_URL',
    flag: 'redis-url',
    default: '',
    help: 'Redis to run as a cluster node on (redis:// or rediss://); empty: one node in memory',
    schema: optionalText.refine((v) => v === undefined || /^rediss?:\/\/[^\s]+$/.test(v), 'must be a redis:// or rediss:// URL'),
  },
  redisPrefix: {
    env: 'REDIS_PREFIX',
    flag: 'redis-prefix',
    default: 'sigserve:',
    help: 'Prefix of every Redis key and channel of this cluster',
    schema: z.string().min(1).max(200),
  },
  redisCommandTimeout: {
    env: 'REDIS_COMMAND_TIMEOUT',
    flag: 'redis-command-timeout',
    default: '2000',
    help: 'Longest wait for one Redis command before the request fails with internal, ms',
    schema: int(10, 60_000),
  },
  heartbeatInterval: {
    env: 'HEARTBEAT_INTERVAL',
    flag: 'heartbeat-interval',
    default: '2000',
    help: 'Cluster mode: time between a node\'s heartbeats, ms',
    schema: int(10, 60_000),
  },
  nodeTimeout: {
    env: 'NODE_TIMEOUT',
    flag: 'node-timeout',
    default: '6000',
    help: 'Cluster mode: a node silent this long is dead (its sharers get no joiners, its keys are removed), ms',
    schema: int(50, 600_000),
  },
  clusterLinkHost: {
    env: 'CLUSTER_LINK_HOST',
    flag: 'cluster-link-host',
    default: '127.0.0.1',
    help: 'Cluster mode: address the other nodes reach this one at for direct delivery (off: deliver over Redis pub/sub only)',
    schema: z
      .string()
      .min(1)
      .refine((v) => !['0.0.0.0', '::', '[::]'].includes(v), 'must be an address the other nodes can dial, not a wildcard'),
  },
  clusterLinkPort: {
    env: 'CLUSTER_LINK_PORT',
    flag: 'cluster-link-port',
    default: '0',
    help: 'Cluster mode: TCP port of the direct delivery link (0 picks a free one)',
    schema: int(0, 65535),
  },
} as const;

type Settings = typeof SETTINGS;
export type SettingKey = keyof Settings;

/** The CLI flag (without dashes) and environment variable of a setting. */
export function settingNames(key: SettingKey): { flag: string; env: string } {
  return { flag: SETTINGS[key].flag, env: SETTINGS[key].env };
}

export type Config = {
  readonly [K in SettingKey]: z.output<Settings[K]['schema']>;
} & {
  /** Allowed origins parsed from corsOrigins: `true` means any. */
  readonly origins: true | readonly string[];
  /** Certificate and key contents when TLS is on. */
  readonly tls: { readonly cert: string; readonly key: string } | undefined;
  /** Share authorization, with the public key's PEM text, when configured. */
  readonly shareAuth: Readonly<ShareAuthOptions> | undefined;
};

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n  ${problems.join('\n  ')}`);
    this.name = 'ConfigError';
  }
}

const keys = Object.keys(SETTINGS) as SettingKey[];

/**
 * Builds the configuration from `overrides` (as typed values, for code that
 * starts the server), then CLI flags, then environment variables, then
 * defaults.
 */
export function loadConfig(
  options: { argv?: string[]; env?: NodeJS.ProcessEnv; overrides?: Partial<Record<SettingKey, string | number>> } = {},
): Config {
  const { argv = [], env = {}, overrides = {} } = options;
  const problems: string[] = [];
  let flags: Record<string, string | boolean | undefined> = {};
  try {
    flags = parseArgs({
      args: argv,
      options: Object.fromEntries(keys.map((k) => [SETTINGS[k].flag, { type: 'string' }] as const)),
      strict: true,
      allowPositionals: false,
    }).values;
  } catch (error) {
    problems.push((error as Error).message);
  }
  const values: Record<string, unknown> = {};
  for (const key of keys) {
    const setting = SETTINGS[key];
    const override = overrides[key];
    const raw = override !== undefined ? String(override) : ((flags[setting.flag] as string | undefined) ?? env[setting.env] ?? setting.default);
    const parsed = setting.schema.safeParse(raw);
    if (parsed.success) values[key] = parsed.data;
    else problems.push(`${setting.env} / --${setting.flag}: ${parsed.error.issues.map((i) => i.message).join('; ')} (got ${JSON.stringify(raw)})`);
  }
  if (problems.length === 0) crossCheck(values, problems);
  const tls = problems.length === 0 ? readTls(values, problems) : undefined;
  const shareAuth = problems.length === 0 ? readShareAuth(values, problems) : undefined;
  if (problems.length > 0) throw new ConfigError(problems);
  const corsOrigins = values['corsOrigins'] as string;
  const origins = corsOrigins.trim() === '*' ? true : corsOrigins.split(',').map((o) => o.trim()).filter(Boolean);
  return Object.freeze({ ...values, origins, tls, shareAuth }) as Config;
}

function crossCheck(values: Record<string, unknown>, problems: string[]): void {
  if ((values['defaultTtl'] as number) > (values['maxTtl'] as number)) {
    problems.push('SHARE_TTL_DEFAULT / --share-ttl-default: must not exceed SHARE_TTL_MAX / --share-ttl-max');
  }
  try {
    parseTrustedProxies(values['trustedProxies'] as string);
  } catch (error) {
    problems.push(`TRUSTED_PROXIES / --trusted-proxies: ${(error as Error).message}`);
  }
  if (Boolean(values['tlsCert']) !== Boolean(values['tlsKey'])) {
    problems.push('TLS_CERT / --tls-cert and TLS_KEY / --tls-key: set both or neither');
  }
  if ((values['heartbeatInterval'] as number) * 2 > (values['nodeTimeout'] as number)) {
    problems.push('HEARTBEAT_INTERVAL / --heartbeat-interval: must be at most half of NODE_TIMEOUT / --node-timeout');
  }
}

function readShareAuth(values: Record<string, unknown>, problems: string[]): Config['shareAuth'] {
  const secret = values['authJwtSecret'] as string | undefined;
  const keySetting = values['authJwtPublicKey'] as string | undefined;
  if (!secret && !keySetting) return undefined;
  const named = (key: SettingKey): string => `${SETTINGS[key].env} / --${SETTINGS[key].flag}`;
  if (secret && keySetting) {
    problems.push(`${named('authJwtSecret')} and ${named('authJwtPublicKey')}: set one, not both`);
    return undefined;
  }
  let publicKey: string | undefined;
  if (keySetting) {
    try {
      publicKey = keySetting.includes('-----BEGIN') ? keySetting : readFileSync(keySetting, 'utf8');
    } catch (error) {
      problems.push(`${named('authJwtPublicKey')}: cannot read ${keySetting}: ${(error as NodeJS.ErrnoException).code ?? error}`);
      return undefined;
    }
  }
  const options: ShareAuthOptions = {
    secret,
    publicKey,
    issuer: values['authJwtIssuer'] as string | undefined,
    audience: values['authJwtAudience'] as string | undefined,
  };
  try {
    new ShareAuth(options);
  } catch (error) {
    problems.push(`${named(secret ? 'authJwtSecret' : 'authJwtPublicKey')}: ${(error as Error).message}`);
    return undefined;
  }
  return Object.freeze(options);
}

function readTls(values: Record<string, unknown>, problems: string[]): Config['tls'] {
  const certPath = values['tlsCert'] as string | undefined;
  const keyPath = values['tlsKey'] as string | undefined;
  if (!certPath || !keyPath) return undefined;
  const read = (path: string, setting: Settings['tlsCert' | 'tlsKey']): string => {
    try {
      return readFileSync(path, 'utf8');
    } catch (error) {
      problems.push(`${setting.env} / --${setting.flag}: cannot read ${path}: ${(error as NodeJS.ErrnoException).code ?? error}`);
      return '';
    }
  };
  return { cert: read(certPath, SETTINGS.tlsCert), key: read(keyPath, SETTINGS.tlsKey) };
}

/** The text of `--help`. */
export function helpText(command: string): string {
  const rows = keys.map((k) => {
    const s = SETTINGS[k];
    return [`--${s.flag}`, s.env, s.default === '' ? '(none)' : s.default, s.help];
  });
  const widths = [0, 1, 2].map((i) => Math.max(...rows.map((r) => r[i]!.length)));
  const lines = rows.map((r) => r.map((cell, i) => (i < 3 ? cell.padEnd(widths[i]!) : cell)).join('  '));
  return [
    `Usage: ${command} [options]`,
    '',
    'A WebRTC signaling server. Every option can also be set by its environment variable;',
    'a flag wins over the variable.',
    '',
    ['flag'.padEnd(widths[0]!), 'variable'.padEnd(widths[1]!), 'default'.padEnd(widths[2]!), 'meaning'].join('  '),
    ...lines,
    '',
    '  --help  show this text',
  ].join('\n');
}
