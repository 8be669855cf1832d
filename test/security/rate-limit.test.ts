import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ManualClock } from '../../src/clock.ts';
import { MemoryRateLimiter } from '../../src/rate-limit.ts';
import { startTestApp } from '../support/app.ts';

/**
 * Issue 9, finding 2: the in-process limiter cleared every window once it
 * held 100,000 keys, so a flood of distinct keys (spoofed addresses) gave
 * every caller already refused a fresh budget. Now a full table drops the
 * keys that owe least, and a refused caller owes the most.
 */
describe('the in-process rate limiter', () => {
  test('a flood of distinct addresses does not reset a caller already refused (real server, real sockets)', async () => {
    // A clock that stands still: only the flood, not the passing of time, could give budget back.
    const clock = new ManualClock(Date.now());
    const limiter = new MemoryRateLimiter(clock, 1000);
    // The service trusts the proxy at 127.0.0.1, which lets this test be 1,100 clients.
    const t = await startTestApp({
      listen: true,
      clock,
      rateLimiter: limiter,
      env: { RATE_LIMIT_AUTH_PER_MINUTE: '5', TRUST_PROXY: '127.0.0.1' },
    });
    try {
      const refresh = async (address: string) => {
        const response = await fetch(`${t.url}/v1/auth/refresh`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'x-forwarded-for': address },
          body: '{"refreshToken":"not-a-token"}',
        });
        await response.arrayBuffer();
        return response.status;
      };
      const victim = [];
      for (let i = 0; i < 6; i++) victim.push(await refresh('203.0.113.7'));
      assert.deepEqual(victim, [401, 401, 401, 401, 401, 429]);

      const answered: number[] = [];
      for (let batch = 0; batch < 1100; batch += 50) {
        const addresses = Array.from({ length: 50 }, (_, i) => `10.0.${((batch + i) >> 8) & 255}.${(batch + i) & 255}`);
        answered.push(...(await Promise.all(addresses.map(refresh))));
      }
      assert.ok(answered.every((status) => status === 401));
      assert.ok(limiter.size <= 1000, `holds ${limiter.size} keys`);

      assert.equal(await refresh('203.0.113.7'), 429, 'the flood gave the refused caller a new budget');
    } finally {
      await t.close();
    }
  });

  test('a burst of `limit`, then one more every window/limit; Retry-After says when', async () => {
    const clock = new ManualClock();
    const limiter = new MemoryRateLimiter(clock);
    const outcomes = [];
    for (let i = 0; i < 4; i++) outcomes.push(await limiter.consume('k', 3, 60_000));
    assert.deepEqual(
      outcomes.map((o) => o.allowed),
      [true, true, true, false],
    );
    assert.equal(outcomes[3]!.retryAfterMs, 20_000);
    clock.advance(19_999);
    assert.equal((await limiter.consume('k', 3, 60_000)).allowed, false);
    clock.advance(1);
    assert.equal((await limiter.consume('k', 3, 60_000)).allowed, true);
    assert.equal((await limiter.consume('k', 3, 60_000)).allowed, false);
    // A full window later the key owes nothing, and is forgotten when room is needed.
    clock.advance(60_000);
    assert.deepEqual(await limiter.consume('k', 3, 60_000), { allowed: true, retryAfterMs: 0 });
  });

  test('refund gives one unit back, never more than the budget', async () => {
    const limiter = new MemoryRateLimiter(new ManualClock());
    for (let i = 0; i < 3; i++) await limiter.consume('k', 3, 60_000);
    assert.equal((await limiter.consume('k', 3, 60_000)).allowed, false);
    await limiter.refund('k', 3, 60_000);
    assert.equal((await limiter.consume('k', 3, 60_000)).allowed, true);
    assert.equal((await limiter.consume('k', 3, 60_000)).allowed, false);
    for (let i = 0; i < 10; i++) await limiter.refund('k', 3, 60_000);
    assert.equal(limiter.size, 0);
    const burst = [];
    for (let i = 0; i < 4; i++) burst.push((await limiter.consume('k', 3, 60_000)).allowed);
    assert.deepEqual(burst, [true, true, true, false]);
  });

  test('a full table drops first who owes nothing, then who owes least; memory stays bounded', async () => {
    const clock = new ManualClock();
    const limiter = new MemoryRateLimiter(clock, 100);
    for (let i = 0; i < 5; i++) await limiter.consume(`blocked-${i}`, 2, 60_000);
    for (let i = 0; i < 5; i++) await limiter.consume(`blocked-${i}`, 2, 60_000);
    for (let i = 0; i < 5; i++) assert.equal((await limiter.consume(`blocked-${i}`, 2, 60_000)).allowed, false);
    for (let i = 0; i < 10_000; i++) {
      await limiter.consume(`flood-${i}`, 2, 60_000);
      if (i % 1000 === 0) clock.advance(1);
      assert.ok(limiter.size <= 100);
    }
    for (let i = 0; i < 5; i++) assert.equal((await limiter.consume(`blocked-${i}`, 2, 60_000)).allowed, false, `blocked-${i} was reset`);
  });
});
