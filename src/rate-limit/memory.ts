import type { Clock } from '../clock.ts';
import type { RateDecision, RateLimiter } from '../rate-limit.ts';
import { admit, giveBack } from './gcra.ts';

/** Room made at once when the table is full, so the sort below runs once per this many new keys. */
const EVICT_FRACTION = 0.2;

/**
 * Per-key budgets in this process (one instance). Memory is bounded by
 * `maxKeys`, and no flood of distinct keys can reset anyone's budget: when the
 * table is full, keys that owe nothing are dropped first (forgetting them
 * changes nothing), then the keys that owe least. A caller being refused owes
 * nearly a whole window; to push it out, the table must fill with keys that
 * each owe more, i.e. that each spent nearly their whole budget within one
 * window (some 3 million requests a minute at the default auth limit), not
 * one request per spoofed address. In general a flood in which every key made
 * k requests can give another key at most k requests back.
 */
export class MemoryRateLimiter implements RateLimiter {
  /** Key -> theoretical arrival time (see gcra.ts). */
  readonly #tats = new Map<string, number>();
  readonly #clock: Clock;
  readonly #maxKeys: number;

  constructor(clock: Clock, maxKeys = 100_000) {
    this.#clock = clock;
    this.#maxKeys = maxKeys;
  }

  /** Keys currently held (for tests and metrics). */
  get size(): number {
    return this.#tats.size;
  }

  async consume(key: string, limit: number, windowMs: number): Promise<RateDecision> {
    return this.consumeNow(key, limit, windowMs);
  }

  /** The synchronous core, also the fallback of the Redis limiter. */
  consumeNow(key: string, limit: number, windowMs: number): RateDecision {
    const now = this.#clock.now();
    const stored = this.#tats.get(key);
    const decision = admit(stored, now, limit, windowMs);
    if (decision.allowed) {
      if (stored === undefined && this.#tats.size >= this.#maxKeys) this.#makeRoom(now);
      this.#tats.set(key, decision.tat);
    }
    return { allowed: decision.allowed, retryAfterMs: decision.retryAfterMs };
  }

  async refund(key: string, limit: number, windowMs: number): Promise<void> {
    this.refundNow(key, limit, windowMs);
  }

  refundNow(key: string, limit: number, windowMs: number): void {
    const tat = giveBack(this.#tats.get(key), this.#clock.now(), limit, windowMs);
    if (tat === undefined) this.#tats.delete(key);
    else this.#tats.set(key, tat);
  }

  async close(): Promise<void> {}

  #makeRoom(now: number): void {
    // One pass forgets the keys that owe nothing and collects what the others owe.
    const owed = new Float64Array(this.#tats.size);
    let n = 0;
    this.#tats.forEach((tat, key) => {
      if (tat <= now) this.#tats.delete(key);
      else owed[n++] = tat;
    });
    const target = Math.floor(this.#maxKeys * (1 - EVICT_FRACTION));
    const excess = n - target;
    if (excess <= 0) return;
    // Whoever owes least goes first; every window here is a minute or an hour,
    // so the absolute debt (TAT - now) orders keys by how soon they would be
    // forgotten anyway.
    const threshold = owed.subarray(0, n).sort()[excess - 1]!;
    this.#tats.forEach((tat, key) => {
      if (tat <= threshold) this.#tats.delete(key);
    });
  }
}
