import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import pg from 'pg';
import { createTestDatabase } from '../support/database.ts';
import { ROOT } from '../support/launch.ts';
import { ServerProcess } from '../support/server-process.ts';

/** `./navi <args>` exactly as an operator types it, with the service's environment. */
function navi(args: string[], env: Record<string, string>): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    execFile(
      join(ROOT, 'navi'),
      args,
      { env: { PATH: `${process.execPath.replace(/\/node$/, '')}:${process.env.PATH}`, ...env } },
      (error, stdout, stderr) => resolve({ code: error ? Number(error.code ?? 1) : 0, output: stdout + stderr }),
    );
  });
}

interface Sent {
  id: string;
  status: number;
  answeredAt: number;
}

/** Senders that keep tapping until stopped, like couples using the app during the backup. */
function tapLoad(server: ServerProcess, token: string, to: string, concurrency = 8) {
  const sent: Sent[] = [];
  let running = true;
  const loops = Array.from({ length: concurrency }, async () => {
    while (running) {
      const id = randomUUID();
      const { status } = await server
        .call('POST', '/v1/taps', { token, body: { id, to, intensity: 'light', pattern: 'single' } })
        .catch(() => ({ status: 0 }));
      sent.push({ id, status, answeredAt: performance.now() });
    }
  });
  return {
    sent,
    async stop() {
      running = false;
      await Promise.all(loops);
    },
  };
}

async function historyIds(server: ServerProcess, token: string): Promise<Set<string>> {
  const ids = new Set<string>();
  let before: string | undefined;
  for (;;) {
    const page = (await server.call('GET', `/v1/taps?limit=100${before ? `&before=${before}` : ''}`, { token })).body;
    assert.ok(Array.isArray(page.taps), JSON.stringify(page));
    for (const tap of page.taps as Array<{ id: string }>) ids.add(tap.id);
    if (!page.nextCursor) return ids;
    before = page.nextCursor;
  }
}

describe('backup under load, restore, and every acknowledged tap is there', () => {
  test('./navi backup while taps are being sent; ./navi restore; the service on the copy has every tap answered 201 before the backup began', async (t) => {
    const database = await createTestDatabase();
    const dir = mkdtempSync(join(tmpdir(), 'navi-backup-'));
    const cleanups: Array<() => Promise<unknown>> = [];
    t.after(async () => {
      for (const cleanup of cleanups.reverse()) await cleanup();
      await database.drop();
      rmSync(dir, { recursive: true, force: true });
    });
    const postgres = database.config.kind === 'postgres';
    const url = database.config.kind === 'sqlite' ? database.config.path : database.config.url;
    const env = {
      DATABASE_URL: url,
      NODE_ENV: 'development',
      JWT_SECRET: randomBytes(32).toString('base64url'),
      RATE_LIMIT_TAPS_PER_MINUTE: '1000000',
    };
    const file = join(dir, postgres ? 'navi.dump' : 'navi-backup.db');

    const server = await database.whileMigrating(() => ServerProcess.start(env));
    cleanups.push(() => server.stop());
    const alex = (await server.call('POST', '/v1/auth/register', { body: { platform: 'ios' } })).body;
    const sam = (await server.call('POST', '/v1/auth/register', { body: { platform: 'ios' } })).body;
    const { code } = (await server.call('POST', '/v1/pairing-codes', { token: alex.accessToken })).body;
    assert.equal((await server.call('POST', '/v1/pairings', { token: sam.accessToken, body: { code } })).status, 201);

    const load = tapLoad(server, alex.accessToken, sam.userId);
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const backupStarted = performance.now();
    const acknowledged = load.sent.filter((s) => s.status === 201 && s.answeredAt < backupStarted).map((s) => s.id);
    const backup = await navi(['backup', file], env);
    const backupEnded = performance.now();
    await new Promise((resolve) => setTimeout(resolve, 300));
    await load.stop();
    assert.equal(backup.code, 0, backup.output);
    assert.match(backup.output, postgres ? /^backup: wrote .*pg_dump custom format/m : /^backup: wrote .* integrity_check ok$/m);
    const duringBackup = load.sent.filter((s) => s.status === 201 && s.answeredAt > backupStarted && s.answeredAt < backupEnded).length;
    assert.ok(acknowledged.length >= 20, `taps were acknowledged before the backup (${acknowledged.length})`);
    assert.ok(duringBackup > 0, 'taps kept being committed while the backup ran');
    assert.ok(
      load.sent.every((s) => s.status === 201),
      'the backup disturbed no request',
    );

    let restoredEnv = env;
    if (postgres) {
      // Restoring over the live database is refused; restore into a fresh database instead.
      const refused = await navi(['restore', file], env);
      assert.equal(refused.code, 1);
      assert.match(refused.output, /the database is in use by \d+ other session/);
      const target = new URL(url);
      const name = `navi_restore_${randomBytes(4).toString('hex')}`;
      const admin = new pg.Client({ connectionString: url });
      await admin.connect();
      await admin.query(`create database ${name}`);
      await admin.end();
      cleanups.push(async () => {
        const dropper = new pg.Client({ connectionString: url });
        await dropper.connect();
        await dropper.query(`drop database if exists ${name} with (force)`);
        await dropper.end();
      });
      target.pathname = `/${name}`;
      restoredEnv = { ...env, DATABASE_URL: target.toString() };
      await server.stop();
    } else {
      const refused = await navi(['restore', file], env);
      assert.equal(refused.code, 1);
      assert.match(refused.output, new RegExp(`in use by process ${server.child.pid}`));
      assert.equal(await server.stop(), 0);
    }
    const restore = await navi(['restore', file], restoredEnv);
    assert.equal(restore.code, 0, restore.output);

    const restored = await database.whileMigrating(() => ServerProcess.start(restoredEnv));
    cleanups.push(() => restored.stop());
    const present = await historyIds(restored, sam.accessToken);
    const lost = acknowledged.filter((id) => !present.has(id));
    assert.deepEqual(
      lost,
      [],
      `every acknowledged tap survives the backup (${acknowledged.length} acknowledged, ${present.size} restored)`,
    );
    assert.equal((await restored.call('GET', '/v1/me', { token: sam.accessToken })).status, 200, 'tokens from before still work');
  });
});
