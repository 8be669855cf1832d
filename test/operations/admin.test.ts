import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, test } from 'node:test';
import { runAdmin } from '../../src/admin/cli.ts';
import { startTestApp } from '../support/app.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { pair, sendTap, signUp } from '../support/clients.ts';

const envOf = (database: TestDatabase) => ({
  NODE_ENV: 'test',
  DATABASE_URL: database.config.kind === 'sqlite' ? database.config.path : database.config.url,
});

async function admin(argv: string[], env: Record<string, string> = { NODE_ENV: 'test', DATABASE_URL: ':memory:' }) {
  let out = '';
  let err = '';
  const code = await runAdmin(argv, { out: (t) => void (out += t), err: (t) => void (err += t), env });
  return { code, out, err };
}

describe('./navi admin commands: usage', () => {
  test('help lists every command; each command has --help', async () => {
    const help = await admin(['--help']);
    assert.equal(help.code, 0);
    for (const name of ['start', 'test', 'migrate', 'backup FILE', 'restore FILE', 'inspect-tap TAP_ID'])
      assert.match(help.out, new RegExp(`^  ${name}`, 'm'));
    for (const name of ['migrate', 'backup', 'restore', 'inspect-tap']) {
      const one = await admin([name, '--help']);
      assert.equal(one.code, 0);
      assert.match(one.out, new RegExp(`^usage: \\./navi ${name}`));
    }
  });

  test('usage errors exit 2 with a message saying what is wrong', async () => {
    const cases: Array<[string[], RegExp]> = [
      [[], /^usage: \.\/navi <command>/],
      [['launch'], /unknown command launch/],
      [['backup'], /backup takes one FILE/],
      [['backup', 'a.db', 'b.db'], /backup takes one FILE/],
      [['restore', '--yes', 'a.db'], /unknown option --yes/],
      [['inspect-tap'], /inspect-tap takes one TAP_ID/],
      [['inspect-tap', 'not-a-uuid'], /not-a-uuid is not a tap id/],
    ];
    for (const [argv, message] of cases) {
      const result = await admin(argv);
      assert.equal(result.code, 2, argv.join(' '));
      assert.match(result.err, message);
    }
  });

  test('a bad configuration is refused with the config message (exit 1)', async () => {
    const result = await admin(['migrate'], { DATABASE_URL: 'mysql://x' });
    assert.equal(result.code, 1);
    assert.match(result.err, /DATABASE_URL must be a file path/);
  });
});

describe('./navi migrate and inspect-tap', () => {
  test('migrate applies the migrations once, then says the database is up to date', async (t) => {
    const database = await createTestDatabase();
    t.after(() => database.drop());
    const first = await database.whileMigrating(() => admin(['migrate'], envOf(database)));
    assert.equal(first.code, 0, first.err);
    assert.match(first.out, /^migrate: applied 001-initial/);
    const again = await database.whileMigrating(() => admin(['migrate'], envOf(database)));
    assert.match(again.out, /is up to date/);
  });

  test("inspect-tap shows one tap's delivery and push state per device, as GET /v1/taps/{id} does; safe while running", async (t) => {
    const app = await startTestApp();
    t.after(() => app.close());
    const alex = await signUp(app);
    const sam = await signUp(app);
    await pair(alex, sam);
    const tap = await sendTap(alex, sam, { pattern: 'heartbeat' });
    await new Promise((resolve) => setTimeout(resolve, 50));
    const env = envOf(app.database);

    const table = await admin(['inspect-tap', tap.id.toUpperCase()], env);
    assert.equal(table.code, 0, table.err);
    assert.match(table.out, new RegExp(`^tap ${tap.id} \\(cursor ${tap.cursor}\\)`));
    assert.match(table.out, new RegExp(`${sam.deviceId}\\s+ios\\s+pending\\s+-\\s+-\\s+skipped\\s+offline\\s+0\\s+PushDisabled`));

    const json = await admin(['inspect-tap', tap.id, '--json'], env);
    const api = await alex.request('GET', `/v1/taps/${tap.id}`);
    assert.deepEqual(JSON.parse(json.out), api.json());

    const missing = await admin(['inspect-tap', '00000000-0000-4000-8000-000000000000'], env);
    assert.equal(missing.code, 1);
    assert.match(missing.err, /no tap with id 00000000-0000-4000-8000-000000000000/);
  });
});

describe('SQLite backup and restore, in process', () => {
  test('backup while running; restore refuses while the service owns the database, then puts the copy in place', async (t) => {
    const app = await startTestApp();
    if (app.database.config.kind !== 'sqlite') {
      await app.close();
      return t.skip('SQLite only (PostgreSQL: see backup.test.ts)');
    }
    const path = app.database.config.path;
    const alex = await signUp(app);
    const sam = await signUp(app);
    await pair(alex, sam);
    const kept = await sendTap(alex, sam);
    const env = envOf(app.database);
    const file = join(dirname(path), 'copy.db');

    const backup = await admin(['backup', file], env);
    assert.equal(backup.code, 0, backup.err);
    assert.match(backup.out, new RegExp(`^backup: wrote ${file} \\(.+\\) from ${path} in \\d+ ms; integrity_check ok`));
    assert.match(backup.out, /taps 1/);
    assert.ok(!existsSync(`${file}-wal`), 'the copy is one self-contained file');
    assert.equal((await admin(['backup', file], env)).code, 1, 'an existing file is not overwritten');
    assert.equal((await admin(['backup', file, '--force'], env)).code, 0);

    const after = await sendTap(alex, sam);
    const refused = await admin(['restore', file], env);
    assert.equal(refused.code, 1);
    assert.match(refused.err, new RegExp(`the SQLite database ${path} is in use by process ${process.pid}`));

    await app.close({ keepDatabase: true });
    const restored = await admin(['restore', file], env);
    assert.equal(restored.code, 0, restored.err);
    assert.match(restored.out, /the database it replaced is kept at .*before-restore-/);
    assert.ok(readdirSync(dirname(path)).some((name) => name.startsWith('navi.db.before-restore-')));

    const again = await startTestApp({ database: app.database, jwtSecret: app.config.auth.jwtSecret });
    t.after(() => again.close());
    const history = await again.app.inject({ method: 'GET', url: '/v1/taps', headers: { authorization: `Bearer ${alex.accessToken}` } });
    assert.deepEqual(
      history.json().taps.map((tap: { id: string }) => tap.id),
      [kept.id],
      `the restored database has the tap from before the backup, not ${after.id}`,
    );
    assert.equal((await admin(['restore', join(dirname(path), 'nothing.db')], env)).code, 1);
  });
});
