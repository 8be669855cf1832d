import { AppError } from './errors.ts';
import type { Metrics } from './metrics.ts';

export interface RateDecision {
  allowed: boolean;
  /** When the caller may try again; 0 when allowed. */
  retryAfterMs: number;
}

/**
 * Per-key budgets: "`limit` per `windowMs`" is a burst of `limit`, then one
 * more every `windowMs / limit` (GCRA, a token bucket; see
 * rate-limit/gcra.ts for why). Two implementations: MemoryRateLimiter for
 * one instance, RedisRateLimiter shared by several (REDIS_URL).
 */
export interface RateLimiter {
  /** Takes one unit of the key's budget, or refuses. */
  consume(key: string, limit: number, windowMs: number): Promise<RateDecision>;
  /** Gives back one unit taken by `consume` (an attempt that turned out not to count). */
  refund(key: string, limit: number, windowMs: number): Promise<void>;
  close(): Promise<void>;
}

export { MemoryRateLimiter } from './rate-limit/memory.ts';
export { RedisRateLimiter } from './rate-limit/redis.ts';

export interface Limit {
  name: string;
  key: string;
  max: number;
  windowMs: number;
  message: string;
}

export const rateLimitedError = (message: string, retryAfterMs: number): AppError =>
  new AppError('RATE_LIMITED', message, { headers: { 'retry-after': String(Math.max(1, Math.ceil(retryAfterMs / 1000))) } });

/** Consumes one unit of a named limit; throws RATE_LIMITED (with Retry-After) when it is spent. */
export async function enforceLimit(limiter: RateLimiter, metrics: Metrics, limit: Limit): Promise<void> {
  const decision = await limiter.consume(`${limit.name}:${limit.key}`, limit.max, limit.windowMs);
  if (decision.allowed) return;
  metrics.rateLimited.inc({ limit: limit.name });
  throw rateLimitedError(limit.message, decision.retryAfterMs);
}
