import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { Redis } from 'ioredis';
import { systemClock } from '../../src/clock.ts';
import { createLogger } from '../../src/logger.ts';
import { RedisRateLimiter } from '../../src/rate-limit.ts';
import { REDIS_RETRY_AFTER_MS } from '../../src/rate-limit/redis.ts';
import { connectRedis, REDIS_COMMAND_TIMEOUT_MS } from '../../src/redis.ts';
import { startTestApp, type TestApp } from '../support/app.ts';
import { dropPrefix, OwnRedis, SHARED_REDIS_URL, uniquePrefix } from '../support/redis-server.ts';

/**
 * The Redis-backed limiter (issue 8): one budget for every instance, atomic
 * (a Lua script), keys that expire on their own, and an outage that never
 * turns into errors or hangs: while Redis is down each instance limits on its
 * own (see docs/security.md for why neither failing open nor closed).
 */
const silent = createLogger({ logLevel: 'silent' });

async function limiterOn(url: string, keyPrefix: string): Promise<RedisRateLimiter> {
  const limiter = new RedisRateLimiter({ redis: connectRedis(url, silent), clock: systemClock, logger: silent, keyPrefix });
  await until(() => limiter.connected);
  return limiter;
}

async function until(condition: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('timed out waiting');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

async function register(t: TestApp): Promise<number> {
  const response = await fetch(`${t.url}/v1/auth/register`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: '{"platform":"ios"}',
  });
  await response.arrayBuffer();
  return response.status;
}

describe('the Redis rate limiter', () => {
  const prefixes: string[] = [];
  const prefix = () => {
    const p = uniquePrefix();
    prefixes.push(p);
    return p;
  };
  after(async () => {
    for (const p of prefixes) await dropPrefix(p);
  });

  test('two instances share one budget (two real servers on one Redis)', async () => {
    const shared = prefix();
    const env = { RATE_LIMIT_AUTH_PER_MINUTE: '4' };
    const a = await startTestApp({ listen: true, env, rateLimiter: await limiterOn(SHARED_REDIS_URL, shared) });
    const b = await startTestApp({ listen: true, env, rateLimiter: await limiterOn(SHARED_REDIS_URL, shared) });
    try {
      const statuses = [await register(a), await register(b), await register(a), await register(b), await register(a), await register(b)];
      assert.deepEqual(statuses, [201, 201, 201, 201, 429, 429]);
    } finally {
      await a.close();
      await b.close();
    }
  });

  test('concurrent consumes are atomic: exactly the limit is allowed', async () => {
    const p = prefix();
    const limiters = await Promise.all([limiterOn(SHARED_REDIS_URL, p), limiterOn(SHARED_REDIS_URL, p), limiterOn(SHARED_REDIS_URL, p)]);
    try {
      const decisions = await Promise.all(Array.from({ length: 90 }, (_, i) => limiters[i % 3]!.consume('burst', 25, 60_000)));
      assert.equal(decisions.filter((d) => d.allowed).length, 25);
      const refused = decisions.filter((d) => !d.allowed);
      assert.ok(
        refused.every((d) => d.retryAfterMs > 0 && d.retryAfterMs <= 60_000 / 25 + 1),
        JSON.stringify(refused[0]),
      );
    } finally {
      for (const l of limiters) await l.close();
    }
  });

  test('keys expire once they owe nothing, and refunds give back one unit', async () => {
    const p = prefix();
    const limiter = await limiterOn(SHARED_REDIS_URL, p);
    const redis = new Redis(SHARED_REDIS_URL);
    try {
      await limiter.consume('k', 2, 1000);
      await limiter.consume('k', 2, 1000);
      assert.equal((await limiter.consume('k', 2, 1000)).allowed, false);
      const ttl = await redis.pttl(`${p}k`);
      assert.ok(ttl > 0 && ttl <= 1000, `pttl ${ttl}`);
      await limiter.refund('k', 2, 1000);
      assert.equal((await limiter.consume('k', 2, 1000)).allowed, true);
      await new Promise((resolve) => setTimeout(resolve, 1100));
      assert.equal(await redis.exists(`${p}k`), 0);
      // Flooding distinct keys leaves nothing behind once their window is over.
      await Promise.all(Array.from({ length: 200 }, (_, i) => limiter.consume(`flood-${i}`, 5, 300)));
      await new Promise((resolve) => setTimeout(resolve, 400));
      assert.deepEqual(await redis.keys(`${p}flood-*`), []);
    } finally {
      redis.disconnect();
      await limiter.close();
    }
  });

  test('Redis stopped, paused and restarted: every request is answered in time, limits hold per instance, sharing resumes', async () => {
    const redis = await OwnRedis.start();
    const t = await startTestApp({ listen: true, env: { RATE_LIMIT_AUTH_PER_MINUTE: '3', REDIS_URL: redis.url } });
    const timed = async () => {
      const started = Date.now();
      const status = await register(t);
      return { status, ms: Date.now() - started };
    };
    const limiter = t.ctx.rateLimiter;
    assert.ok(limiter instanceof RedisRateLimiter, 'REDIS_URL selects the Redis limiter');
    try {
      // Up: the budget lives in Redis.
      await until(() => limiter.connected);
      assert.deepEqual([(await timed()).status, (await timed()).status], [201, 201]);

      // Down: answered at once, limited by this instance alone (a fresh budget of 3).
      await redis.stop();
      const down = [];
      for (let i = 0; i < 5; i++) down.push(await timed());
      assert.deepEqual(
        down.map((d) => d.status),
        [201, 201, 201, 429, 429],
      );
      assert.ok(
        // Bounded by this request's own work, not by Redis (an offline queue would wait for it forever).
        down.every((d) => d.ms < 2000),
        JSON.stringify(down),
      );

      // Back (empty, no persistence): decisions are Redis's again once it reconnects.
      await redis.start();
      await until(() => limiter.connected);
      await new Promise((resolve) => setTimeout(resolve, REDIS_RETRY_AFTER_MS));
      assert.deepEqual(
        [(await timed()).status, (await timed()).status, (await timed()).status, (await timed()).status],
        [201, 201, 201, 429],
      );

      // Hung (accepts connections, never answers): each request waits at most the command timeout.
      redis.pause();
      const hung = [];
      for (let i = 0; i < 4; i++) hung.push(await timed());
      assert.ok(
        hung.every((d) => d.status !== 500 && d.ms < REDIS_COMMAND_TIMEOUT_MS + 1750),
        JSON.stringify(hung),
      );
      const fallbacks = await t.ctx.metrics.rateLimitFallbacks.get();
      assert.ok(fallbacks.values[0]!.value >= 5, 'fallback decisions are counted');
      redis.resume();
    } finally {
      await t.close();
      await redis.stop();
    }
  });
});
