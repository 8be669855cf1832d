/**
 * The generic cell rate algorithm (GCRA), the token bucket written as one
 * number per key: the theoretical arrival time (TAT) of the next request.
 * "`limit` per `windowMs`" means a burst of `limit`, then one more every
 * `windowMs / limit`. A key whose TAT has passed is indistinguishable from a
 * key never seen, which is what makes memory easy to bound: only keys that
 * still owe something need to be kept. The same arithmetic runs in Lua for
 * the Redis limiter (redis.ts).
 */
export interface Admission {
  allowed: boolean;
  /** The key's TAT after this request (unchanged when refused). */
  tat: number;
  /** When the next request would be allowed; 0 when this one was. */
  retryAfterMs: number;
}

export function admit(storedTat: number | undefined, now: number, limit: number, windowMs: number): Admission {
  const interval = windowMs / limit;
  const tat = Math.max(storedTat ?? now, now);
  const next = tat + interval;
  if (next - now > windowMs) return { allowed: false, tat, retryAfterMs: Math.ceil(next - now - windowMs) };
  return { allowed: true, tat: next, retryAfterMs: 0 };
}

/** The TAT after giving one unit back; undefined when the key then owes nothing. */
export function giveBack(storedTat: number | undefined, now: number, limit: number, windowMs: number): number | undefined {
  if (storedTat === undefined) return undefined;
  const tat = storedTat - windowMs / limit;
  return tat > now ? tat : undefined;
}
