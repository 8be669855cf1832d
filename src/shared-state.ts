import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { hostname } from 'node:os';
import type { Clock } from './clock.ts';
import type { Config } from './config.ts';
import type { Health } from './health.ts';
import { childLogger, type Logger } from './logger.ts';
import type { Metrics } from './metrics.ts';
import { MemoryRateLimiter, RedisRateLimiter, type RateLimiter } from './rate-limit.ts';
import type { ClientConnection } from './realtime/connection.ts';
import type { EventBus } from './realtime/events.ts';
import { MemoryBus } from './realtime/memory-bus.ts';
import { LocalPresence, type Presence } from './realtime/presence.ts';
import { RedisBus } from './realtime/redis-bus.ts';
import { RedisPresence } from './realtime/redis-presence.ts';
import type { ConnectionRegistry } from './realtime/registry.ts';
import { connectRedis } from './redis.ts';

/**
 * What instances share (docs/scaling.md): the bus, presence and rate limits.
 * With REDIS_URL, through Redis; without, in this process (one instance).
 */
export interface SharedState {
  bus: EventBus;
  presence: Presence;
  rateLimiter: RateLimiter;
  start(): Promise<void>;
  close(): Promise<void>;
}

/** What the Redis parts call back into, once the rest of the context exists. */
export interface SharedStateEvents {
  /** The bus lost messages while Redis was away and is subscribed again: repair live delivery. */
  busRecovered(): void;
  /** These users' last devices were on an instance that died: tell their partners. */
  usersOffline(userIds: string[]): void;
}

interface Deps {
  config: Config;
  connections: ConnectionRegistry<ClientConnection>;
  clock: Clock;
  logger: Logger;
  metrics: Metrics;
  health: Health;
  events: SharedStateEvents;
  /** Replacements from tests. */
  bus?: EventBus;
  rateLimiter?: RateLimiter;
}

/** How long a start waits for Redis before it goes on without it. */
const REDIS_START_WAIT_MS = 5000;

const ready = (redis: Redis): Promise<void> =>
  redis.status === 'ready' ? Promise.resolve() : new Promise((resolve) => redis.once('ready', () => resolve()));

export function createSharedState(deps: Deps): SharedState {
  const { config, connections, clock, logger, metrics } = deps;
  const redisConfig = config.redis;
  if (!redisConfig) {
    const bus = deps.bus ?? new MemoryBus(childLogger(logger, 'realtime'));
    const rateLimiter = deps.rateLimiter ?? new MemoryRateLimiter(clock);
    const presence = new LocalPresence(connections);
    return {
      bus,
      presence,
      rateLimiter,
      start: async () => {},
      async close() {
        await bus.close();
        await rateLimiter.close();
      },
    };
  }

  const sharedLogger = childLogger(logger, 'shared');
  // This process, as the others see it: a name people can place, and random bits so a restart is a new instance.
  const instanceId = `${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;
  // Commands (publish, presence, limits) on one connection; subscriptions need one of their own.
  const redis = connectRedis(redisConfig.url, sharedLogger);
  const subscriber = connectRedis(redisConfig.url, sharedLogger);
  const bus =
    deps.bus ??
    new RedisBus({
      publisher: redis,
      subscriber,
      prefix: redisConfig.prefix,
      instanceId,
      logger: sharedLogger,
      metrics,
      onResubscribed: () => deps.events.busRecovered(),
    });
  const presence = new RedisPresence({
    redis,
    registry: connections,
    prefix: redisConfig.prefix,
    instanceId,
    heartbeatMs: redisConfig.heartbeatMs,
    logger: sharedLogger,
    metrics,
    onOffline: (userIds) => deps.events.usersOffline(userIds),
  });
  const rateLimiter =
    deps.rateLimiter ??
    new RedisRateLimiter({
      redis,
      clock,
      logger: childLogger(logger, 'limits'),
      keyPrefix: `${redisConfig.prefix}rl:`,
      onFallback: () => metrics.rateLimitFallbacks.inc(),
    });
  // A Redis outage degrades (presence per instance, delivery across instances repaired afterwards) but every
  // instance keeps serving: it is reported here, not a reason to take instances out of rotation (docs/scaling.md).
  deps.health.add(
    'redis',
    async () => {
      if (redis.status !== 'ready' || subscriber.status !== 'ready') return { status: 'degraded', detail: `redis is ${redis.status}` };
      await redis.ping();
      return { status: 'ok' };
    },
    { readiness: false },
  );
  sharedLogger.info({ instanceId }, 'sharing live delivery, presence and limits through Redis');
  return {
    bus,
    presence,
    rateLimiter,
    async start() {
      // Start with Redis if it answers soon; without it the instance serves anyway and catches up when it comes.
      const connected = await Promise.race([
        Promise.all([ready(redis), ready(subscriber)]).then(() => true),
        new Promise<false>((resolve) => setTimeout(() => resolve(false), REDIS_START_WAIT_MS).unref()),
      ]);
      if (!connected) sharedLogger.warn({ waitedMs: REDIS_START_WAIT_MS }, 'Redis does not answer yet: starting without it for now');
      await presence.start();
    },
    async close() {
      await presence.close();
      await bus.close();
      await rateLimiter.close();
      subscriber.disconnect();
      redis.disconnect();
    },
  };
}
