import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { openDatabase, type DatabaseHandle } from '../../src/db/database.ts';
import { readEntries } from '../../src/delivery/log-repo.ts';
import { startTestApp, type TestApp } from '../support/app.ts';
import { asUser, pair, sendTap, signUp, type User } from '../support/clients.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { dropPrefix, SHARED_REDIS_URL, uniquePrefix } from '../support/redis-server.ts';

/**
 * Cursor order is visibility order, without a global lock: many writers at
 * once (on PostgreSQL two service instances, each with its own pool and group
 * commit, on one database), and readers that poll each log from the newest
 * position they saw, as a device does. An entry that became visible after a
 * later one would be skipped by such a reader, and show up as a hole.
 */
describe('log positions become visible in order, per user, under concurrent writers', () => {
  let database: TestDatabase;
  const apps: TestApp[] = [];
  let reader: DatabaseHandle;
  const prefix = uniquePrefix();
  before(async () => {
    database = await createTestDatabase();
    // SQLite belongs to one process; PostgreSQL takes several instances, which share a Redis.
    const env: Record<string, string> = { RATE_LIMIT_TAPS_PER_MINUTE: '1000000' };
    if (database.config.kind === 'postgres') Object.assign(env, { REDIS_URL: SHARED_REDIS_URL, REDIS_KEY_PREFIX: prefix });
    apps.push(await startTestApp({ database, env }));
    if (database.config.kind === 'postgres') apps.push(await startTestApp({ database, jwtSecret: apps[0]!.config.auth.jwtSecret, env }));
    reader = openDatabase(database.config);
  });
  after(async () => {
    await reader.close();
    for (const app of apps.splice(0).reverse()) await app.close({ keepDatabase: true });
    await database.drop();
    await dropPrefix(prefix);
  });

  test('every entry a reader saw at cursor c is followed only by later ones: no reader ever skips an entry', async () => {
    const couples: Array<[User, User]> = [];
    for (let i = 0; i < 12; i++) {
      const a = await signUp(apps[0]!);
      const b = await signUp(apps[0]!);
      await pair(a, b);
      couples.push([a, b]);
    }
    const users = couples.flat();
    const seen = new Map(users.map((u) => [u.userId, [] as number[]]));
    let writing = true;
    const readers = users.map(async (user) => {
      let cursor = 0;
      const positions = seen.get(user.userId)!;
      for (;;) {
        const last = !writing;
        const page = await readEntries(reader.db, user.userId, cursor, 50);
        for (const entry of page) positions.push(entry.pos);
        cursor = page.at(-1)?.pos ?? cursor;
        if (last && page.length === 0) return;
      }
    });
    // Both partners write at once (contention on one log) through every instance (no shared process).
    await Promise.all(
      couples.flatMap(([a, b], i) =>
        [a, b].map(async (from, k) => {
          const to = from === a ? b : a;
          for (let n = 0; n < 25; n++) await sendTap(asUser(apps[(i + k + n) % apps.length]!, from), to);
        }),
      ),
    );
    writing = false;
    await Promise.all(readers);
    for (const user of users) {
      const positions = seen.get(user.userId)!;
      // The pairing, then 50 taps (25 sent, 25 received): positions 1 to 51, each seen once, in order.
      assert.deepEqual(
        positions,
        Array.from({ length: 51 }, (_, i) => i + 1),
        `the log of ${user.userId}`,
      );
    }
  });
});
