import { Redis } from 'ioredis';
import type { Logger } from './logger.ts';

/** No request waits on Redis longer than this; a slower answer counts as Redis being down. */
export const REDIS_COMMAND_TIMEOUT_MS = 250;

/**
 * A Redis connection for request paths: commands fail at once while it is
 * disconnected (no offline queue, no retries per request) and time out after
 * REDIS_COMMAND_TIMEOUT_MS, so an outage is never a hang; it reconnects in
 * the background on its own.
 */
export function connectRedis(url: string, logger: Logger): Redis {
  const redis = new Redis(url, {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    commandTimeout: REDIS_COMMAND_TIMEOUT_MS,
    connectTimeout: 2000,
    retryStrategy: (attempt) => Math.min(attempt * 200, 2000),
  });
  let lastError = 0;
  redis.on('error', (error: Error) => {
    // Reconnection attempts fail every couple of seconds while Redis is down: log once in a while.
    if (Date.now() - lastError < 30_000) return;
    lastError = Date.now();
    logger.warn({ err: error }, 'redis connection error');
  });
  redis.on('ready', () => logger.info('redis connected'));
  return redis;
}
