import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { ConfigError, loadConfig } from '../src/config.ts';
import { DEV_SECRET_FILE, resolveJwtSecret } from '../src/jwt-secret.ts';

const problemsOf = (env: Record<string, string>): string[] => {
  try {
    loadConfig(env);
  } catch (error) {
    assert.ok(error instanceof ConfigError);
    return error.problems;
  }
  return [];
};

describe('configuration from the environment', () => {
  test('defaults give a development service on SQLite at ./data/navi.db, listening on localhost only', () => {
    const config = loadConfig({});
    assert.equal(config.env, 'development');
    assert.equal(config.host, '127.0.0.1');
    assert.equal(config.port, 3000);
    assert.deepEqual(config.database, { kind: 'sqlite', path: join(process.cwd(), 'data', 'navi.db') });
    assert.equal(config.auth.accessTokenTtlSeconds, 900);
    assert.equal(config.pairing.codeTtlSeconds, 600);
    assert.equal(config.pairing.maxPairingsPerUser, 5);
    assert.equal(config.delivery.ackWindowMs, 3000);
    assert.equal(config.apns, undefined, 'push is off unless configured');
  });

  test('production listens on every interface and needs a strong secret', () => {
    assert.equal(loadConfig({ NODE_ENV: 'production', JWT_SECRET: 'x'.repeat(32) }).host, '0.0.0.0');
    assert.match(problemsOf({ NODE_ENV: 'production' }).join(), /JWT_SECRET is required/);
    assert.match(problemsOf({ JWT_SECRET: 'too-short' }).join(), /at least 32 characters/);
  });

  test('a postgres:// URL selects PostgreSQL; other URLs are refused', () => {
    assert.deepEqual(loadConfig({ DATABASE_URL: 'postgres://u@db:5432/navi' }).database, {
      kind: 'postgres',
      url: 'postgres://u@db:5432/navi',
    });
    assert.equal(loadConfig({ DATABASE_URL: 'postgresql://u@db/navi' }).database.kind, 'postgres');
    assert.match(problemsOf({ DATABASE_URL: 'mysql://u@db/navi' }).join(), /file path \(SQLite\) or a postgres:\/\/ URL/);
  });

  test('every problem is reported at once, naming the variable and its value', () => {
    const problems = problemsOf({ PORT: '70000', LOG_LEVEL: 'loud', ACK_WINDOW_MS: 'soon' });
    assert.equal(problems.length, 3, problems.join('\n'));
    assert.ok(problems.some((p) => p.startsWith('PORT="70000"')));
    assert.ok(problems.some((p) => p.startsWith('LOG_LEVEL="loud"')));
    assert.ok(problems.some((p) => p.startsWith('ACK_WINDOW_MS="soon"')));
  });

  test('APNs is all or nothing', () => {
    assert.match(problemsOf({ APNS_KEY_ID: 'K' }).join(), /also set APNS_TEAM_ID, APNS_BUNDLE_ID/);
    const both = problemsOf({ APNS_KEY_ID: 'K', APNS_TEAM_ID: 'T', APNS_BUNDLE_ID: 'b', APNS_KEY: 'pem', APNS_KEY_PATH: '/k.p8' });
    assert.match(both.join(), /exactly one of APNS_KEY_PATH and APNS_KEY/);
    const apns = loadConfig({
      APNS_KEY_ID: 'K',
      APNS_TEAM_ID: 'T',
      APNS_BUNDLE_ID: 'app.navi',
      APNS_KEY_PATH: '/k.p8',
      APNS_ENV: 'sandbox',
    }).apns;
    assert.deepEqual(apns?.key, { path: '/k.p8' });
    assert.equal(apns?.forcedEnvironment, 'sandbox');
    assert.match(
      problemsOf({ APNS_KEY_ID: 'K', APNS_TEAM_ID: 'T', APNS_BUNDLE_ID: 'b', APNS_KEY: 'p', APNS_ORIGIN: 'http://x' }).join(),
      /APNS_ORIGIN/,
    );
  });

  test('the message burst cannot be below the sustained rate', () => {
    assert.match(problemsOf({ WS_MESSAGES_PER_SECOND: '50', WS_MESSAGE_BURST: '10' }).join(), /WS_MESSAGE_BURST/);
  });

  test('in development the token secret is created once beside the database and reused', () => {
    const dir = mkdtempSync(join(tmpdir(), 'navi-secret-'));
    try {
      const config = loadConfig({ DATABASE_URL: join(dir, 'navi.db') });
      const first = resolveJwtSecret(config).auth.jwtSecret;
      const second = resolveJwtSecret(config).auth.jwtSecret;
      assert.equal(first, second);
      assert.ok(first.length >= 32);
      const file = join(dir, DEV_SECRET_FILE);
      assert.equal(readFileSync(file, 'utf8').trim(), first);
      assert.equal(statSync(file).mode & 0o777, 0o600, 'readable by the owner only');
      assert.equal(
        resolveJwtSecret(loadConfig({ DATABASE_URL: join(dir, 'navi.db'), JWT_SECRET: 'y'.repeat(40) })).auth.jwtSecret,
        'y'.repeat(40),
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
