import type { Clock } from './clock.ts';
import { AppError } from './errors.ts';
import type { Metrics } from './metrics.ts';

export interface RateDecision {
  allowed: boolean;
  /** When the caller may try again; 0 when allowed. */
  retryAfterMs: number;
}

/**
 * Fixed-window counters keyed by caller. In-process for one instance; a
 * shared store (Redis INCR + PEXPIRE) fits the same interface for several.
 */
export interface RateLimiter {
  consume(key: string, limit: number, windowMs: number): Promise<RateDecision>;
}

export class MemoryRateLimiter implements RateLimiter {
  readonly #windows = new Map<string, { start: number; count: number }>();
  readonly #clock: Clock;
  readonly #maxKeys: number;

  constructor(clock: Clock, maxKeys = 100_000) {
    this.#clock = clock;
    this.#maxKeys = maxKeys;
  }

  async consume(key: string, limit: number, windowMs: number): Promise<RateDecision> {
    const now = this.#clock.now();
    const start = now - (now % windowMs);
    let window = this.#windows.get(key);
    if (!window || window.start !== start) {
      if (!window && this.#windows.size >= this.#maxKeys) this.#evictStale(start);
      window = { start, count: 0 };
      this.#windows.set(key, window);
    }
    window.count++;
    if (window.count <= limit) return { allowed: true, retryAfterMs: 0 };
    return { allowed: false, retryAfterMs: start + windowMs - now };
  }

  /** Keeps memory bounded under a flood of distinct keys (e.g. spoofed IPs). */
  #evictStale(currentStart: number): void {
    for (const [key, window] of this.#windows) {
      if (window.start !== currentStart) this.#windows.delete(key);
    }
    if (this.#windows.size >= this.#maxKeys) this.#windows.clear();
  }
}

/** Consumes one unit of a named limit; throws RATE_LIMITED (with Retry-After) when it is spent. */
export async function enforceLimit(
  limiter: RateLimiter,
  metrics: Metrics,
  limit: { name: string; key: string; max: number; windowMs: number; message: string },
): Promise<void> {
  const decision = await limiter.consume(`${limit.name}:${limit.key}`, limit.max, limit.windowMs);
  if (decision.allowed) return;
  metrics.rateLimited.inc({ limit: limit.name });
  throw new AppError('RATE_LIMITED', limit.message, {
    headers: { 'retry-after': String(Math.max(1, Math.ceil(decision.retryAfterMs / 1000))) },
  });
}
