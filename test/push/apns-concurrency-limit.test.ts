import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConcurrencyLimit } from '../../src/push/apns/concurrency-limit.ts';

test('holders never exceed the limit and waiters are served in arrival order', async () => {
  const limit = new ConcurrencyLimit(2);
  const served: number[] = [];
  const waits = [1, 2, 3, 4, 5].map((n) => limit.acquire().then((granted) => granted && served.push(n)));
  await Promise.resolve();
  assert.deepEqual(served, [1, 2]);
  assert.equal(limit.active, 2);
  assert.equal(limit.waiting, 3);

  limit.release();
  await Promise.resolve();
  assert.deepEqual(served, [1, 2, 3]);
  // A newcomer queues behind those already waiting.
  const late = limit.acquire().then(() => served.push(6));
  limit.release();
  limit.release();
  limit.release();
  await Promise.all([...waits, late]);
  assert.deepEqual(served, [1, 2, 3, 4, 5, 6]);
  assert.equal(limit.active, 2);
});

test('closing refuses the waiters and later acquires but lets holders finish', async () => {
  const limit = new ConcurrencyLimit(1);
  assert.equal(await limit.acquire(), true);
  const waiting = limit.acquire();
  limit.close();
  assert.equal(await waiting, false);
  assert.equal(await limit.acquire(), false);
  assert.equal(limit.active, 1);
  limit.release();
  assert.equal(limit.active, 0);
});

test('a limit below one is a configuration error', () => {
  assert.throws(() => new ConcurrencyLimit(0), RangeError);
});
