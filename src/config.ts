import { isIP } from 'node:net';
import { isAbsolute, resolve } from 'node:path';
import { getHeapStatistics } from 'node:v8';
import { Type, type Static } from 'typebox';
import { Value } from 'typebox/value';
import { apnsKeyFileProblem, caFileProblem, sqlitePathProblem } from './config-files.ts';
import { signingKeyProblem } from './push/apns/provider-token.ts';

/**
 * The environment, declared once. Every variable the service reads is here,
 * with its default; `loadConfig` validates it and turns it into `Config`.
 * Nothing else in the service reads `process.env`.
 */
const Int = (def: number, minimum: number, maximum: number, description: string) =>
  Type.Integer({ default: def, minimum, maximum, description });
const Str = (description: string) => Type.Optional(Type.String({ minLength: 1, description }));
const Bool = (def: boolean, description: string) => Type.Boolean({ default: def, description });

export const EnvSchema = Type.Object({
  NODE_ENV: Type.Enum(['development', 'production', 'test'], {
    default: 'development',
    description: 'production requires JWT_SECRET and listens on 0.0.0.0 by default',
  }),
  HOST: Str('Interface to listen on (default 0.0.0.0 in production, 127.0.0.1 otherwise)'),
  PORT: Int(3000, 0, 65535, 'TCP port'),
  LOG_LEVEL: Type.Enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], {
    default: 'info',
    description: 'JSON logs on stdout, one line per request',
  }),
  LOG_FORMAT: Type.Enum(['json', 'pretty'], {
    default: 'json',
    description:
      'pretty: coloured lines for people, through the development dependency pino-pretty; npm start and ./navi start choose it when stdout is a terminal and NODE_ENV is not production',
  }),
  DATABASE_URL: Type.String({ minLength: 1, default: './data/navi.db', description: 'SQLite file path, or postgres:// URL' }),
  JWT_SECRET: Str('HMAC secret for tokens, at least 32 characters; required in production'),
  JWT_ISSUER: Type.String({ minLength: 1, default: 'navi', description: 'iss claim of issued tokens' }),
  JWT_AUDIENCE: Type.String({ minLength: 1, default: 'navi-app', description: 'aud claim of issued tokens' }),
  ACCESS_TOKEN_TTL_SECONDS: Int(900, 60, 86_400, 'Access token lifetime'),
  REFRESH_TOKEN_TTL_SECONDS: Int(60 * 86_400, 3600, 400 * 86_400, 'Refresh token lifetime (renewed on every refresh)'),
  REFRESH_REUSE_GRACE_SECONDS: Int(30, 0, 300, 'How long the previous refresh token still works, for a client that lost the response'),
  PAIRING_CODE_TTL_SECONDS: Int(600, 60, 86_400, 'Pairing code lifetime'),
  MAX_PAIRINGS_PER_USER: Int(5, 1, 100, 'How many partners one user may have'),
  PAIRING_FAILED_GUESSES_PER_NETWORK_PER_HOUR: Int(
    30,
    1,
    1_000_000,
    'Pairing codes that match nothing, per client network (IPv4 address or IPv6 /64) per hour',
  ),
  PAIRING_FAILED_GUESSES_PER_MINUTE: Int(
    1000,
    1,
    10_000_000,
    'Pairing codes that match nothing, per minute across all clients (see docs/security.md)',
  ),
  MAINTENANCE_INTERVAL_SECONDS: Int(60, 1, 86_400, 'How often expired codes and tokens are purged'),
  DOCS_ENABLED: Bool(
    true,
    'Serve the interactive API reference at /docs, its assets and the documents it links; /openapi.json is served either way',
  ),
  TRUST_PROXY: Type.String({
    minLength: 1,
    default: 'false',
    description:
      'Which X-Forwarded-For hops to believe: false (none; the default), the number of proxies in front of Navi (e.g. 1 behind one load balancer), or a comma-separated list of their addresses or CIDRs (e.g. 10.0.0.0/8); see docs/security.md',
  }),
  REQUEST_TIMEOUT_SECONDS: Int(
    15,
    1,
    300,
    'A request (headers and body) must arrive within this time, or it is answered 408 and its connection closed',
  ),
  CORS_ORIGINS: Str('Comma-separated origins (e.g. https://app.example.com) whose web pages may call the API; none by default'),
  REDIS_URL: Str(
    'redis:// or rediss:// URL: what several instances share (live delivery, presence, rate limits, revocations); required to run more than one instance (docs/scaling.md)',
  ),
  REDIS_KEY_PREFIX: Type.String({
    minLength: 1,
    default: 'navi:',
    description: 'Prefix of every Redis key and channel (deployments may share a Redis)',
  }),
  PRESENCE_HEARTBEAT_SECONDS: Int(
    5,
    1,
    60,
    'With Redis: how often an instance tells the others it is alive; the users of one that dies are shown offline within about four heartbeats',
  ),
  RATE_LIMIT_AUTH_PER_MINUTE: Int(30, 1, 1_000_000, 'Registrations and refreshes per client network (IPv4 address or IPv6 /64) per minute'),
  RATE_LIMIT_PAIRING_PER_MINUTE: Int(20, 1, 1_000_000, 'Pairing code creations and redemptions per user per minute'),
  RATE_LIMIT_TAPS_PER_MINUTE: Int(300, 1, 10_000_000, 'Taps per user per minute'),
  ACK_WINDOW_MS: Int(3000, 100, 60_000, 'How long a live socket has to ack a tap before the device is pushed'),
  TAP_TTL_SECONDS: Int(600, 10, 86_400, 'A tap older than this is no longer pushed'),
  WS_HEARTBEAT_SECONDS: Int(25, 1, 300, 'Interval of server pings; a peer silent for two intervals is dropped'),
  WS_AUTH_TIMEOUT_SECONDS: Int(5, 1, 60, 'Time allowed for the first auth message'),
  WS_MAX_MESSAGE_BYTES: Int(4096, 256, 1_048_576, 'Largest client frame'),
  WS_MESSAGES_PER_SECOND: Int(20, 1, 10_000, 'Sustained client message rate per connection'),
  WS_MESSAGE_BURST: Int(60, 1, 100_000, 'Client message burst per connection'),
  WS_MAX_BUFFERED_BYTES: Int(1_048_576, 1024, 268_435_456, 'Unsent bytes after which a slow consumer is dropped'),
  WS_DRAIN_TIMEOUT_SECONDS: Int(5, 1, 120, 'How long a replay waits for a client to take what was sent before dropping it as too slow'),
  WS_REPLAY_PAGE_SIZE: Int(200, 1, 10_000, 'Log entries read from the database at a time while a connection catches up'),
  WS_GAP_REPAIR_MS: Int(200, 1, 10_000, 'How long a connection waits for a missing live entry before reading it from the database'),
  WS_LOG_CHECK_SECONDS: Int(
    10,
    1,
    3600,
    "How often each connection's log head is compared with what it was sent (repairs a lost last entry)",
  ),
  WS_MAX_CONNECTIONS_PER_DEVICE: Int(2, 1, 100, 'Live sockets per device; the oldest is replaced'),
  WS_MAX_CONNECTIONS_PER_USER: Int(10, 1, 1000, 'Live sockets per user; the oldest is replaced'),
  SHUTDOWN_GRACE_SECONDS: Int(10, 1, 600, 'Time allowed to drain on SIGTERM'),
  APNS_KEY_PATH: Str('Path of the .p8 APNs auth key'),
  APNS_KEY: Str('The .p8 APNs auth key as PEM text (alternative to APNS_KEY_PATH)'),
  APNS_KEY_ID: Str('Key ID of the APNs auth key'),
  APNS_TEAM_ID: Str('Apple developer team ID'),
  APNS_BUNDLE_ID: Str('Bundle ID of the iPhone app: the apns-topic of pushes to iOS devices'),
  APNS_WATCH_BUNDLE_ID: Str(
    "Bundle ID of the watch app: the apns-topic of pushes to watchOS devices (default: APNS_BUNDLE_ID followed by .watchkitapp, Apple's convention)",
  ),
  APNS_ENV: Type.Optional(
    Type.Enum(['sandbox', 'production'], {
      description: 'Force one APNs environment for every device (by default each device uses the environment it registered its token with)',
    }),
  ),
  APNS_ORIGIN: Str('Override of the APNs origin, e.g. https://127.0.0.1:8443 (tests, proxies)'),
  APNS_CA_PATH: Str('Extra CA certificate (PEM) trusted for the APNs connection'),
  APNS_CONCURRENCY: Int(100, 1, 1000, 'APNs requests in flight per environment'),
  APNS_TIMEOUT_MS: Int(10_000, 100, 120_000, 'Per-request APNs timeout'),
  SENTRY_DSN: Str('Sentry DSN; error reporting is off without it'),
  // Operations (docs/operations.md)
  METRICS_TOKEN: Str('When set, /metrics requires Authorization: Bearer <METRICS_TOKEN> (at least 16 characters)'),
  METRICS_PORT: Type.Optional(
    Type.Integer({ minimum: 1, maximum: 65535, description: 'Serve /metrics on this port only (on HOST), not on the public one' }),
  ),
  SHUTDOWN_DELAY_SECONDS: Type.Optional(
    Type.Integer({
      minimum: 0,
      maximum: 300,
      description:
        'On SIGTERM, how long /readyz answers 503 before the listener closes, so load balancers stop routing first (default 5 in production, 0 otherwise)',
    }),
  ),
  LOAD_SHED_EVENT_LOOP_DELAY_MS: Int(
    1000,
    0,
    60_000,
    'Shed new requests with 503 while the mean event-loop delay exceeds this; 0 turns it off',
  ),
  LOAD_SHED_HEAP_USED_PERCENT: Int(
    90,
    0,
    100,
    'Shed new requests with 503 while the V8 heap is fuller than this share of its limit; 0 turns it off',
  ),
});
export type Env = Static<typeof EnvSchema>;

export type NodeEnv = Env['NODE_ENV'];
export type DatabaseConfig = { kind: 'sqlite'; path: string } | { kind: 'postgres'; url: string };
export type ApnsEnvironment = 'sandbox' | 'production';
export type TrustProxy = false | number | string[];

export interface ApnsConfig {
  key: { path: string } | { pem: string };
  keyId: string;
  teamId: string;
  /** apns-topic of iOS devices (and any platform that is not watchOS). */
  bundleId: string;
  /** apns-topic of watchOS devices: a watch app registers its own token, valid only under its own bundle id. */
  watchBundleId: string;
  forcedEnvironment?: ApnsEnvironment;
  origin?: string;
  caPath?: string;
  concurrency: number;
  timeoutMs: number;
}

export interface Config {
  env: NodeEnv;
  host: string;
  port: number;
  logLevel: Env['LOG_LEVEL'];
  logFormat: Env['LOG_FORMAT'];
  database: DatabaseConfig;
  /** false, a hop count, or trusted proxy addresses/CIDRs (see parseTrustProxy). */
  trustProxy: TrustProxy;
  requestTimeoutMs: number;
  /** Origins allowed to call the API from a browser; empty: CORS is off. */
  corsOrigins: string[];
  /** Absent: one instance (in-process bus, presence and rate limits). */
  redis?: { url: string; prefix: string; heartbeatMs: number };
  /** Whether /docs (the interactive reference) is served. */
  docsEnabled: boolean;
  shutdownGraceMs: number;
  auth: {
    /** Undefined until `ensureJwtSecret` resolves it (see jwt-secret.ts). */
    jwtSecret?: string;
    issuer: string;
    audience: string;
    accessTokenTtlSeconds: number;
    refreshTokenTtlSeconds: number;
    refreshReuseGraceSeconds: number;
  };
  pairing: {
    codeTtlSeconds: number;
    maxPairingsPerUser: number;
    failedGuessesPerNetworkPerHour: number;
    failedGuessesPerMinute: number;
  };
  maintenanceIntervalMs: number;
  rateLimits: { authPerMinute: number; pairingPerMinute: number; tapsPerMinute: number };
  delivery: { ackWindowMs: number; tapTtlSeconds: number };
  realtime: {
    heartbeatMs: number;
    authTimeoutMs: number;
    maxMessageBytes: number;
    messagesPerSecond: number;
    messageBurst: number;
    maxBufferedBytes: number;
    replayPageSize: number;
    gapRepairMs: number;
    logCheckMs: number;
    drainTimeoutMs: number;
    maxConnectionsPerDevice: number;
    maxConnectionsPerUser: number;
  };
  /** Absent when APNs is not configured: the push channel is off. */
  apns?: ApnsConfig;
  sentryDsn?: string;
  /** /metrics protection (modules/health/metrics-route.ts). */
  metrics: { token?: string; port?: number };
  /** SIGTERM: readiness fails for this long before the listener closes. */
  shutdownDelayMs: number;
  /** @fastify/under-pressure thresholds; 0 turns one off. */
  loadShedding: { maxEventLoopDelayMs: number; maxHeapUsedBytes: number; sampleIntervalMs: number };
}

export class ConfigError extends Error {
  readonly problems: string[];
  constructor(problems: string[]) {
    super(`Invalid configuration:\n  - ${problems.join('\n  - ')}`);
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

export const MIN_JWT_SECRET_LENGTH = 32;
const APNS_REQUIRED = ['APNS_KEY_ID', 'APNS_TEAM_ID', 'APNS_BUNDLE_ID'] as const;

/** Reads and validates the environment once; throws ConfigError listing every problem. */
export function loadConfig(source: Record<string, string | undefined> = process.env): Config {
  const env = parseEnv(source);
  const problems: string[] = [];

  if (env.JWT_SECRET !== undefined && env.JWT_SECRET.length < MIN_JWT_SECRET_LENGTH) {
    problems.push(`JWT_SECRET must be at least ${MIN_JWT_SECRET_LENGTH} characters (generate one with: openssl rand -base64 48)`);
  } else if (env.NODE_ENV === 'production' && env.JWT_SECRET === undefined) {
    problems.push('JWT_SECRET is required when NODE_ENV=production (generate one with: openssl rand -base64 48)');
  }

  if (env.LOG_FORMAT === 'pretty' && !isInstalled('pino-pretty')) {
    problems.push(
      'LOG_FORMAT=pretty needs pino-pretty, a development dependency: install with npm ci (not --omit=dev), or use LOG_FORMAT=json',
    );
  }
  const database = parseDatabaseUrl(env.DATABASE_URL, problems);
  const apns = parseApns(env, problems);
  const trustProxy = parseTrustProxy(env.TRUST_PROXY, problems);
  const corsOrigins = parseOrigins(env.CORS_ORIGINS, problems);
  if (env.REDIS_URL !== undefined && !/^rediss?:\/\/[^\s]+$/i.test(env.REDIS_URL))
    problems.push('REDIS_URL must be a redis:// or rediss:// URL');
  if (env.WS_MESSAGE_BURST < env.WS_MESSAGES_PER_SECOND) {
    problems.push('WS_MESSAGE_BURST must be at least WS_MESSAGES_PER_SECOND');
  }
  const shutdownDelaySeconds = env.SHUTDOWN_DELAY_SECONDS ?? (env.NODE_ENV === 'production' ? 5 : 0);
  problems.push(...operationsProblems(env, shutdownDelaySeconds));
  if (problems.length > 0) throw new ConfigError(problems);

  return {
    env: env.NODE_ENV,
    host: env.HOST ?? (env.NODE_ENV === 'production' ? '0.0.0.0' : '127.0.0.1'),
    port: env.PORT,
    logLevel: env.LOG_LEVEL,
    logFormat: env.LOG_FORMAT,
    database,
    trustProxy,
    requestTimeoutMs: env.REQUEST_TIMEOUT_SECONDS * 1000,
    corsOrigins,
    redis:
      env.REDIS_URL === undefined
        ? undefined
        : { url: env.REDIS_URL, prefix: env.REDIS_KEY_PREFIX, heartbeatMs: env.PRESENCE_HEARTBEAT_SECONDS * 1000 },
    docsEnabled: env.DOCS_ENABLED,
    shutdownGraceMs: env.SHUTDOWN_GRACE_SECONDS * 1000,
    auth: {
      jwtSecret: env.JWT_SECRET,
      issuer: env.JWT_ISSUER,
      audience: env.JWT_AUDIENCE,
      accessTokenTtlSeconds: env.ACCESS_TOKEN_TTL_SECONDS,
      refreshTokenTtlSeconds: env.REFRESH_TOKEN_TTL_SECONDS,
      refreshReuseGraceSeconds: env.REFRESH_REUSE_GRACE_SECONDS,
    },
    pairing: {
      codeTtlSeconds: env.PAIRING_CODE_TTL_SECONDS,
      maxPairingsPerUser: env.MAX_PAIRINGS_PER_USER,
      failedGuessesPerNetworkPerHour: env.PAIRING_FAILED_GUESSES_PER_NETWORK_PER_HOUR,
      failedGuessesPerMinute: env.PAIRING_FAILED_GUESSES_PER_MINUTE,
    },
    maintenanceIntervalMs: env.MAINTENANCE_INTERVAL_SECONDS * 1000,
    rateLimits: {
      authPerMinute: env.RATE_LIMIT_AUTH_PER_MINUTE,
      pairingPerMinute: env.RATE_LIMIT_PAIRING_PER_MINUTE,
      tapsPerMinute: env.RATE_LIMIT_TAPS_PER_MINUTE,
    },
    delivery: { ackWindowMs: env.ACK_WINDOW_MS, tapTtlSeconds: env.TAP_TTL_SECONDS },
    realtime: {
      heartbeatMs: env.WS_HEARTBEAT_SECONDS * 1000,
      authTimeoutMs: env.WS_AUTH_TIMEOUT_SECONDS * 1000,
      maxMessageBytes: env.WS_MAX_MESSAGE_BYTES,
      messagesPerSecond: env.WS_MESSAGES_PER_SECOND,
      messageBurst: env.WS_MESSAGE_BURST,
      maxBufferedBytes: env.WS_MAX_BUFFERED_BYTES,
      replayPageSize: env.WS_REPLAY_PAGE_SIZE,
      gapRepairMs: env.WS_GAP_REPAIR_MS,
      logCheckMs: env.WS_LOG_CHECK_SECONDS * 1000,
      drainTimeoutMs: env.WS_DRAIN_TIMEOUT_SECONDS * 1000,
      maxConnectionsPerDevice: env.WS_MAX_CONNECTIONS_PER_DEVICE,
      maxConnectionsPerUser: env.WS_MAX_CONNECTIONS_PER_USER,
    },
    apns,
    sentryDsn: env.SENTRY_DSN,
    metrics: { token: env.METRICS_TOKEN, port: env.METRICS_PORT },
    shutdownDelayMs: shutdownDelaySeconds * 1000,
    loadShedding: {
      maxEventLoopDelayMs: env.LOAD_SHED_EVENT_LOOP_DELAY_MS,
      maxHeapUsedBytes: Math.round((getHeapStatistics().heap_size_limit * env.LOAD_SHED_HEAP_USED_PERCENT) / 100),
      sampleIntervalMs: 1000,
    },
  };
}

function operationsProblems(env: Env, shutdownDelaySeconds: number): string[] {
  const problems: string[] = [];
  if (env.METRICS_TOKEN !== undefined && env.METRICS_TOKEN.length < 16) {
    problems.push('METRICS_TOKEN must be at least 16 characters (generate one with: openssl rand -hex 24)');
  }
  if (env.METRICS_PORT !== undefined && env.METRICS_PORT === env.PORT) problems.push('METRICS_PORT must differ from PORT');
  if (shutdownDelaySeconds >= env.SHUTDOWN_GRACE_SECONDS) {
    problems.push(
      `SHUTDOWN_DELAY_SECONDS (${shutdownDelaySeconds}) must be shorter than SHUTDOWN_GRACE_SECONDS (${env.SHUTDOWN_GRACE_SECONDS})`,
    );
  }
  return problems;
}

function parseEnv(source: Record<string, string | undefined>): Env {
  const known: Record<string, unknown> = {};
  for (const key of Object.keys(EnvSchema.properties)) {
    const raw = source[key];
    if (raw !== undefined && raw.trim() !== '') known[key] = raw.trim();
  }
  const withDefaults = Value.Default(EnvSchema, known);
  const converted = Value.Convert(EnvSchema, withDefaults);
  if (Value.Check(EnvSchema, converted)) return converted;
  const problems = Value.Errors(EnvSchema, converted).map((error) => {
    const name = error.instancePath.replace(/^\//, '') || 'environment';
    const allowed = (EnvSchema.properties as Record<string, { enum?: string[] }>)[name]?.enum;
    return `${name}=${JSON.stringify(source[name] ?? '')} ${allowed ? `must be one of: ${allowed.join(', ')}` : error.message}`;
  });
  throw new ConfigError(problems);
}

function isInstalled(specifier: string): boolean {
  try {
    import.meta.resolve(specifier);
    return true;
  } catch {
    return false;
  }
}

function parseDatabaseUrl(url: string, problems: string[]): DatabaseConfig {
  if (/^postgres(ql)?:\/\//i.test(url)) {
    try {
      new URL(url);
    } catch {
      problems.push('DATABASE_URL is not a valid postgres:// URL');
    }
    return { kind: 'postgres', url };
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(url)) {
    problems.push('DATABASE_URL must be a file path (SQLite) or a postgres:// URL');
  }
  const path = url.replace(/^file:/, '');
  const resolved = path === ':memory:' || isAbsolute(path) ? path : resolve(path);
  const problem = sqlitePathProblem(resolved);
  if (problem !== undefined) problems.push(`DATABASE_URL=${JSON.stringify(url)}: ${problem}`);
  return { kind: 'sqlite', path: resolved };
}

/**
 * X-Forwarded-For is written by whoever sends the request, so only the hops
 * appended by proxies we run can be believed: a count of them, or their
 * addresses. `true` (believe every hop) let any client choose its address.
 */
function parseTrustProxy(value: string, problems: string[]): TrustProxy {
  const text = value.trim().toLowerCase();
  if (text === 'false' || text === '0') return false;
  if (text === 'true') {
    problems.push(
      'TRUST_PROXY=true would believe addresses a client writes itself; set the number of proxies in front of Navi (usually TRUST_PROXY=1) or their addresses (e.g. TRUST_PROXY=10.0.0.0/8)',
    );
    return false;
  }
  if (/^\d+$/.test(text)) {
    const hops = Number(text);
    if (hops > 10) problems.push('TRUST_PROXY as a hop count must be between 0 and 10');
    return hops;
  }
  const entries = text
    .split(',')
    .map((entry) => entry.trim())
    .filter(Boolean);
  const named = new Set(['loopback', 'linklocal', 'uniquelocal']);
  for (const entry of entries) {
    const [address, bits, extra] = entry.split('/');
    const family = isIP(address ?? '');
    const maxBits = family === 4 ? 32 : 128;
    const validBits = bits === undefined || (/^\d{1,3}$/.test(bits) && Number(bits) <= maxBits);
    if (!named.has(entry) && (family === 0 || !validBits || extra !== undefined)) {
      problems.push(`TRUST_PROXY: ${JSON.stringify(entry)} is not an address, a CIDR or one of loopback, linklocal, uniquelocal`);
    }
  }
  return entries;
}

function parseOrigins(value: string | undefined, problems: string[]): string[] {
  if (value === undefined) return [];
  const origins = value
    .split(',')
    .map((origin) => origin.trim())
    .filter(Boolean);
  for (const origin of origins) {
    let parsed: URL | undefined;
    try {
      parsed = new URL(origin);
    } catch {
      parsed = undefined;
    }
    if (!parsed || !/^https?:$/.test(parsed.protocol) || parsed.origin !== origin) {
      problems.push(
        `CORS_ORIGINS: ${JSON.stringify(origin)} is not an origin like https://app.example.com (scheme, host, optional port; nothing else)`,
      );
    }
  }
  return origins;
}

function parseApns(env: Env, problems: string[]): ApnsConfig | undefined {
  const given = [...APNS_REQUIRED, 'APNS_KEY_PATH', 'APNS_KEY'].filter((k) => env[k as keyof Env] !== undefined);
  if (given.length === 0) return undefined;
  const missing = APNS_REQUIRED.filter((k) => env[k] === undefined);
  if (missing.length > 0) problems.push(`APNs is partly configured: also set ${missing.join(', ')}`);
  if ((env.APNS_KEY_PATH === undefined) === (env.APNS_KEY === undefined)) {
    problems.push('APNs needs exactly one of APNS_KEY_PATH and APNS_KEY');
  }
  if (env.APNS_ORIGIN !== undefined && !/^https:\/\/[^/]+$/.test(env.APNS_ORIGIN)) {
    problems.push('APNS_ORIGIN must look like https://host[:port]');
  }
  // The files are read now, so a wrong one stops the start here with its variable's name.
  const fileProblem = (name: string, path: string | undefined, check: (path: string) => string | undefined) => {
    const problem = path === undefined ? undefined : check(path);
    if (problem !== undefined) problems.push(`${name}=${JSON.stringify(path)}: ${problem}`);
  };
  fileProblem('APNS_KEY_PATH', env.APNS_KEY_PATH, apnsKeyFileProblem);
  fileProblem('APNS_CA_PATH', env.APNS_CA_PATH, caFileProblem);
  // The key itself is a secret: named, never quoted.
  const keyProblem = env.APNS_KEY === undefined ? undefined : signingKeyProblem(env.APNS_KEY);
  if (keyProblem !== undefined) problems.push(`APNS_KEY ${keyProblem}`);
  if (missing.length > 0) return undefined;
  return {
    key: env.APNS_KEY_PATH !== undefined ? { path: env.APNS_KEY_PATH } : { pem: env.APNS_KEY ?? '' },
    keyId: env.APNS_KEY_ID ?? '',
    teamId: env.APNS_TEAM_ID ?? '',
    bundleId: env.APNS_BUNDLE_ID ?? '',
    watchBundleId: env.APNS_WATCH_BUNDLE_ID ?? `${env.APNS_BUNDLE_ID}.watchkitapp`,
    forcedEnvironment: env.APNS_ENV,
    origin: env.APNS_ORIGIN,
    caPath: env.APNS_CA_PATH,
    concurrency: env.APNS_CONCURRENCY,
    timeoutMs: env.APNS_TIMEOUT_MS,
  };
}
