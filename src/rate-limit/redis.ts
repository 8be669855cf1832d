import type { Redis } from 'ioredis';
import type { Clock } from '../clock.ts';
import type { Logger } from '../logger.ts';
import type { RateDecision, RateLimiter } from '../rate-limit.ts';
import { MemoryRateLimiter } from './memory.ts';

/**
 * GCRA (see gcra.ts) in one Lua script, so reading and writing a key's TAT is
 * atomic across instances. Time is Redis's own (TIME), so instances whose
 * clocks disagree still share one budget. Every key expires when it owes
 * nothing, so Redis holds only keys refused or recently used, and nothing
 * ever has to be evicted by hand.
 *
 * ARGV: limit, windowMs, 'consume' | 'refund'. Returns {allowed, retryAfterMs}.
 */
const GCRA_SCRIPT = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local interval = window / limit
local stored = tonumber(redis.call('GET', KEYS[1]))
local tat = now
if stored ~= nil and stored > now then tat = stored end
if ARGV[3] == 'refund' then
  local back = tat - interval
  if back <= now then redis.call('DEL', KEYS[1])
  else redis.call('SET', KEYS[1], string.format('%.3f', back), 'PX', math.ceil(back - now)) end
  return {1, 0}
end
local nextTat = tat + interval
if nextTat - now > window then return {0, math.ceil(nextTat - now - window)} end
redis.call('SET', KEYS[1], string.format('%.3f', nextTat), 'PX', math.ceil(nextTat - now))
return {1, 0}
`;

/** After Redis fails, this long passes before it is asked again (so a hung Redis does not add its timeout to every request). */
export const REDIS_RETRY_AFTER_MS = 1000;

type GcraCommand = (key: string, limit: number, windowMs: number, op: 'consume' | 'refund') => Promise<[number, number]>;

interface Deps {
  redis: Redis;
  clock: Clock;
  logger: Logger;
  /** Namespaces the keys (tests use one per test; deployments may share a Redis). */
  keyPrefix?: string;
  /** Called for each decision taken in-process because Redis was unavailable. */
  onFallback?: () => void;
}

/**
 * Budgets shared by every instance, in Redis. While Redis is unreachable,
 * each instance decides with its own in-process limiter: the limits keep
 * holding per instance (N instances allow at most N times the limit), taps
 * and sign-ins keep working, and no request waits longer than the command
 * timeout of the Redis connection. Neither "open" (abuse unbounded while
 * Redis is down) nor "closed" (an outage of a cache taking the service down).
 */
export class RedisRateLimiter implements RateLimiter {
  readonly #deps: Deps;
  readonly #prefix: string;
  readonly #fallback: MemoryRateLimiter;
  readonly #gcra: GcraCommand;
  #skipRedisUntil = 0;
  #lastWarning = 0;

  constructor(deps: Deps) {
    this.#deps = deps;
    this.#prefix = deps.keyPrefix ?? 'navi:rl:';
    this.#fallback = new MemoryRateLimiter(deps.clock);
    if (!('naviGcra' in deps.redis)) deps.redis.defineCommand('naviGcra', { numberOfKeys: 1, lua: GCRA_SCRIPT });
    this.#gcra = (deps.redis as unknown as { naviGcra: GcraCommand }).naviGcra.bind(deps.redis);
  }

  /** Whether decisions are Redis's right now (false while it is unreachable; health checks may report it). */
  get connected(): boolean {
    return this.#deps.redis.status === 'ready';
  }

  async consume(key: string, limit: number, windowMs: number): Promise<RateDecision> {
    if (this.#deps.clock.now() >= this.#skipRedisUntil) {
      try {
        const [allowed, retryAfterMs] = await this.#gcra(this.#prefix + key, limit, windowMs, 'consume');
        return { allowed: allowed === 1, retryAfterMs };
      } catch (error) {
        this.#failed(error);
      }
    }
    this.#deps.onFallback?.();
    return this.#fallback.consumeNow(key, limit, windowMs);
  }

  async refund(key: string, limit: number, windowMs: number): Promise<void> {
    if (this.#deps.clock.now() >= this.#skipRedisUntil) {
      try {
        await this.#gcra(this.#prefix + key, limit, windowMs, 'refund');
        return;
      } catch (error) {
        this.#failed(error);
      }
    }
    this.#fallback.refundNow(key, limit, windowMs);
  }

  async close(): Promise<void> {
    this.#deps.redis.disconnect();
  }

  #failed(error: unknown): void {
    const now = this.#deps.clock.now();
    this.#skipRedisUntil = now + REDIS_RETRY_AFTER_MS;
    if (now - this.#lastWarning >= 10_000) {
      this.#lastWarning = now;
      this.#deps.logger.warn({ err: error }, 'rate limiter: Redis unavailable, limiting per instance until it is back');
    }
  }
}
