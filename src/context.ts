import { systemClock, type Clock } from './clock.ts';
import type { Config } from './config.ts';
import { migrateToLatest, openDatabase, type DatabaseHandle } from './db/database.ts';
import { hmacSha256 } from './ids.ts';
import { childLogger, createLogger, type Logger } from './logger.ts';
import { createMetrics, type Metrics } from './metrics.ts';
import { AccountService } from './modules/accounts/service.ts';
import { AuthService } from './modules/auth/service.ts';
import { DeviceService } from './modules/devices/service.ts';
import { PairingService } from './modules/pairing/service.ts';
import { AckService } from './modules/taps/acks.ts';
import { TapService } from './modules/taps/service.ts';
import { WriteQueue } from './modules/taps/write-queue.ts';
import { ApnsClient } from './push/apns/client.ts';
import { PushDispatcher } from './push/dispatcher.ts';
import type { PushSender } from './push/sender.ts';
import { MemoryRateLimiter, RedisRateLimiter, type RateLimiter } from './rate-limit.ts';
import { connectRedis } from './redis.ts';
import type { ClientConnection } from './realtime/connection.ts';
import type { EventBus } from './realtime/events.ts';
import { MemoryBus } from './realtime/memory-bus.ts';
import { ConnectionRegistry } from './realtime/registry.ts';
import { Maintenance } from './jobs/maintenance.ts';

/** How long a push claim is ours before another instance (or the next start) may take it over. */
export const PUSH_LEASE_MS = 30_000;

export type ResolvedConfig = Config & { auth: Config['auth'] & { jwtSecret: string } };

export interface Services {
  auth: AuthService;
  devices: DeviceService;
  accounts: AccountService;
  pairing: PairingService;
  taps: TapService;
  acks: AckService;
}

/** Everything the app is built from, as one plain object (see STYLE.md). */
export interface AppContext {
  config: ResolvedConfig;
  logger: Logger;
  clock: Clock;
  database: DatabaseHandle;
  metrics: Metrics;
  bus: EventBus;
  rateLimiter: RateLimiter;
  connections: ConnectionRegistry<ClientConnection>;
  push: PushDispatcher;
  maintenance: Maintenance;
  services: Services;
  /** Starts the background work: push dispatch and the periodic purge. */
  start(): Promise<void>;
  /** Stops the background work, lets accepted writes commit, closes the database. */
  close(): Promise<void>;
}

/** Replaceable parts: tests swap the clock, the logger or the push provider; a scale-out build swaps the bus. */
export interface ContextOverrides {
  clock?: Clock;
  logger?: Logger;
  bus?: EventBus;
  rateLimiter?: RateLimiter;
  /** null: push off even when APNs is configured. */
  pushSender?: PushSender | null;
}

export async function createContext(config: ResolvedConfig, overrides: ContextOverrides = {}): Promise<AppContext> {
  const logger = overrides.logger ?? createLogger(config);
  const clock = overrides.clock ?? systemClock;
  const metrics = createMetrics();
  const database = openDatabase(config.database);
  try {
    await migrateToLatest(database, childLogger(logger, 'db'));
  } catch (error) {
    await database.close();
    throw error;
  }

  const bus = overrides.bus ?? new MemoryBus(childLogger(logger, 'realtime'));
  const rateLimiter = overrides.rateLimiter ?? createRateLimiter(config, clock, logger, metrics);
  const connections = new ConnectionRegistry<ClientConnection>({
    maxPerDevice: config.realtime.maxConnectionsPerDevice,
    maxPerUser: config.realtime.maxConnectionsPerUser,
  });
  const pushLogger = childLogger(logger, 'push');
  const pushSender =
    overrides.pushSender === null
      ? undefined
      : (overrides.pushSender ?? (config.apns ? new ApnsClient({ config: config.apns, clock, logger: pushLogger, metrics }) : undefined));
  const tapTtlMs = config.delivery.tapTtlSeconds * 1000;
  const push = new PushDispatcher({ database, clock, logger: pushLogger, metrics, sender: pushSender, tapTtlMs, leaseMs: PUSH_LEASE_MS });
  const writes = new WriteQueue(
    database,
    { ackWindowMs: config.delivery.ackWindowMs, tapTtlMs, pushEnabled: pushSender !== undefined, leaseMs: PUSH_LEASE_MS },
    metrics,
  );

  const devices = new DeviceService({ database, clock, bus });
  const auth = new AuthService({ database, clock, config: config.auth, devices, logger: childLogger(logger, 'auth') });
  const pairing = new PairingService({
    database,
    clock,
    bus,
    presence: connections,
    config: config.pairing,
    codePepper: hmacSha256(config.auth.jwtSecret, 'navi pairing codes'),
  });
  const taps = new TapService({
    database,
    writes,
    clock,
    bus,
    presence: connections,
    metrics,
    rateLimiter,
    push,
    tapsPerMinute: config.rateLimits.tapsPerMinute,
  });
  const acks = new AckService({ writes, clock, bus, metrics });
  const accounts = new AccountService({ database, bus, devices, pairing });
  const maintenance = new Maintenance({
    database,
    clock,
    pairing,
    logger: childLogger(logger, 'jobs'),
    intervalMs: config.maintenanceIntervalMs,
  });

  if (!pushSender)
    pushLogger.info('push channel disabled: APNs is not configured (set APNS_KEY_ID, APNS_TEAM_ID, APNS_BUNDLE_ID and APNS_KEY_PATH)');

  return {
    config,
    logger,
    clock,
    database,
    metrics,
    bus,
    rateLimiter,
    connections,
    push,
    maintenance,
    services: { auth, devices, accounts, pairing, taps, acks },
    async start() {
      await push.start();
      maintenance.start();
    },
    async close() {
      await maintenance.stop();
      await writes.drain();
      await push.stop();
      await pushSender?.close();
      await bus.close();
      await rateLimiter.close();
      await database.close();
    },
  };
}

/** Shared through Redis when REDIS_URL is set (several instances), otherwise in this process. */
function createRateLimiter(config: ResolvedConfig, clock: Clock, logger: Logger, metrics: Metrics): RateLimiter {
  if (!config.redisUrl) return new MemoryRateLimiter(clock);
  const limitsLogger = childLogger(logger, 'limits');
  return new RedisRateLimiter({
    redis: connectRedis(config.redisUrl, limitsLogger),
    clock,
    logger: limitsLogger,
    onFallback: () => metrics.rateLimitFallbacks.inc(),
  });
}
