import { systemClock, type Clock } from './clock.ts';
import type { Config } from './config.ts';
import { migrateToLatest, openDatabase, type DatabaseHandle } from './db/database.ts';
import { settleOutstandingAsDisabled } from './delivery/deliveries-repo.ts';
import { PUSH_LEASE_MS, type DeliveryPolicy } from './delivery/policy.ts';
import { deliveryProcedures } from './delivery/procedures.ts';
import { PushDispatcher, type PushChannelState } from './delivery/push-dispatcher.ts';
import { DeliveryService } from './delivery/service.ts';
import { claimInstanceSlot, type InstanceSlot } from './db/instances.ts';
import { databaseSizeBytes } from './db/size.ts';
import { acquireOwnership } from './db/sqlite-owner.ts';
import { queryTimer, timeProcedures } from './db/instrument.ts';
import { Health } from './health.ts';
import { registerHealthChecks } from './health-checks.ts';
import { hmacSha256 } from './ids.ts';
import { Maintenance } from './jobs/maintenance.ts';
import { childLogger, createLogger, type Logger } from './logger.ts';
import { createMetrics, type Metrics } from './metrics.ts';
import { AccountService } from './modules/accounts/service.ts';
import { AuthService } from './modules/auth/service.ts';
import { DeviceService } from './modules/devices/service.ts';
import { PairingService } from './modules/pairing/service.ts';
import { TapService } from './modules/taps/service.ts';
import { ApnsClient } from './push/apns/client.ts';
import type { PushSender } from './push/sender.ts';
import type { RateLimiter } from './rate-limit.ts';
import type { ClientConnection } from './realtime/connection.ts';
import type { EventBus } from './realtime/events.ts';
import { Liveness } from './realtime/liveness.ts';
import type { Presence } from './realtime/presence.ts';
import { ConnectionRegistry } from './realtime/registry.ts';
import { realtimeProcedures } from './realtime/snapshot.ts';
import { createSharedState } from './shared-state.ts';

export type ResolvedConfig = Config & { auth: Config['auth'] & { jwtSecret: string } };

export interface Services {
  auth: AuthService;
  devices: DeviceService;
  accounts: AccountService;
  pairing: PairingService;
  taps: TapService;
  delivery: DeliveryService;
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
  /** Who is online, on every instance. */
  presence: Presence;
  /** Absent when no push provider is configured (push off). */
  push?: PushDispatcher;
  maintenance: Maintenance;
  /** Named health checks (health.ts): subsystems add theirs; /livez, /readyz and /health read them. */
  health: Health;
  /** The log check and presence announcements (realtime/liveness.ts). */
  liveness: Liveness;
  services: Services;
  /** The push channel as health reports it. */
  pushState(): PushChannelState;
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
  // One process owns a SQLite file (db/sqlite-owner.ts): a second one stops here, naming the first.
  const ownership =
    config.database.kind === 'sqlite' && config.database.path !== ':memory:' ? acquireOwnership(config.database.path) : undefined;
  const database = timeProcedures(
    openDatabase(config.database, {
      procedures: [...Object.values(deliveryProcedures), ...Object.values(realtimeProcedures)],
      plugins: [queryTimer(metrics)],
    }),
    metrics,
  );
  try {
    await migrateToLatest(database, childLogger(logger, 'db'));
  } catch (error) {
    await database.close();
    ownership?.release();
    throw error;
  }

  // PostgreSQL: several instances only with Redis (db/instances.ts); SQLite has one owner already.
  let slot: InstanceSlot | undefined;
  if (config.database.kind === 'postgres') {
    try {
      slot = await claimInstanceSlot(config.database.url, config.redis !== undefined);
    } catch (error) {
      await database.close();
      throw error;
    }
  }

  const health = new Health(clock);
  const connections = new ConnectionRegistry<ClientConnection>({
    maxPerDevice: config.realtime.maxConnectionsPerDevice,
    maxPerUser: config.realtime.maxConnectionsPerUser,
  });
  // Late-bound: the shared parts call into what is built from them.
  const late: { liveness?: Liveness } = {};
  const shared = createSharedState({
    config,
    connections,
    clock,
    logger,
    metrics,
    health,
    bus: overrides.bus,
    rateLimiter: overrides.rateLimiter,
    events: {
      busRecovered: () => late.liveness?.checkLogs(),
      usersOffline: (userIds) => {
        for (const userId of userIds) late.liveness?.announcePresence(userId);
      },
    },
  });
  const { bus, presence, rateLimiter } = shared;
  const pushLogger = childLogger(logger, 'push');
  const pushSender =
    overrides.pushSender === null
      ? undefined
      : (overrides.pushSender ?? (config.apns ? new ApnsClient({ config: config.apns, clock, logger: pushLogger, metrics }) : undefined));
  const policy: DeliveryPolicy = {
    ackWindowMs: config.delivery.ackWindowMs,
    tapTtlMs: config.delivery.tapTtlSeconds * 1000,
    pushEnabled: pushSender !== undefined,
    leaseMs: PUSH_LEASE_MS,
  };
  const push = pushSender && new PushDispatcher({ database, clock, logger: pushLogger, metrics, sender: pushSender, policy });
  const delivery = new DeliveryService({ database, clock, bus, metrics, presence, policy, push });

  const devices = new DeviceService({ database, clock, bus });
  // A device signed out or an account deleted through any instance is forgotten by this one's caches at once.
  bus.onBroadcast((event) => (event.type === 'device.removed' ? devices.forget(event.deviceId) : devices.forgetUser(event.userId)));
  const auth = new AuthService({ database, clock, config: config.auth, devices, logger: childLogger(logger, 'auth') });
  const pairing = new PairingService({
    database,
    clock,
    delivery,
    presence,
    config: config.pairing,
    codePepper: hmacSha256(config.auth.jwtSecret, 'navi pairing codes'),
  });
  const taps = new TapService({ database, delivery, clock, metrics, rateLimiter, tapsPerMinute: config.rateLimits.tapsPerMinute });
  const accounts = new AccountService({ database, clock, bus, devices, pairing });
  const maintenance = new Maintenance({
    database,
    clock,
    pairing,
    logger: childLogger(logger, 'jobs'),
    intervalMs: config.maintenanceIntervalMs,
  });

  const liveness = (late.liveness = new Liveness({
    connections,
    presence,
    bus,
    delivery,
    partnerIds: (id) => pairing.partnerIds(id),
    logger: childLogger(logger, 'realtime'),
  }));
  registerHealthChecks(health, { logger: childLogger(logger, 'db'), database, connections, push });
  metrics.sources.healthChecks = async () => (await health.report('health')).checks;
  metrics.sources.databaseSizeBytes = () => databaseSizeBytes(config.database, database);

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
    presence,
    push,
    maintenance,
    health,
    liveness,
    services: { auth, devices, accounts, pairing, taps, delivery },
    pushState: () => push?.state() ?? 'disabled',
    async start() {
      await shared.start();
      if (push) await push.start();
      else await settleOutstandingAsDisabled(database.db);
      maintenance.start();
    },
    async close() {
      await maintenance.stop();
      await delivery.drain();
      await push?.stop();
      await pushSender?.close();
      await shared.close();
      await database.close();
      await slot?.release();
      ownership?.release();
    },
  };
}
