import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import fc from 'fast-check';
import { ConfigError, loadConfig } from '../src/config.ts';
import { DEV_SECRET_FILE, resolveJwtSecret } from '../src/jwt-secret.ts';
import { createTestApnsKey } from './support/fake-apns.ts';
import { localhostCertificate } from './support/tls-cert.ts';

const APNS = { APNS_KEY_ID: 'K', APNS_TEAM_ID: 'T', APNS_BUNDLE_ID: 'app.navi' };

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
    const apns = loadConfig({ ...APNS, APNS_KEY: createTestApnsKey().privateKeyPem, APNS_ENV: 'sandbox' }).apns;
    assert.ok(apns && 'pem' in apns.key);
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

describe('files the configuration names are checked at start, each problem naming its variable', () => {
  const withDir = (run: (dir: string) => void) => {
    const dir = mkdtempSync(join(tmpdir(), 'navi-config-files-'));
    try {
      run(dir);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };
  const key = createTestApnsKey();
  let selfSignedPem = '';
  before(async () => {
    selfSignedPem = (await localhostCertificate()).cert;
  });

  test('a good .p8 key file and CA file are accepted, and the key file is what the client will read', () => {
    withDir((dir) => {
      writeFileSync(join(dir, 'AuthKey.p8'), key.privateKeyPem);
      writeFileSync(join(dir, 'ca.pem'), selfSignedPem);
      const apns = loadConfig({ ...APNS, APNS_KEY_PATH: join(dir, 'AuthKey.p8'), APNS_CA_PATH: join(dir, 'ca.pem') }).apns;
      assert.deepEqual(apns?.key, { path: join(dir, 'AuthKey.p8') });
      assert.equal(apns?.caPath, join(dir, 'ca.pem'));
    });
  });

  test('APNS_KEY_PATH: missing, a directory, empty, not PEM, not P-256, or huge', () => {
    withDir((dir) => {
      const p384 = generateKeyPairSync('ec', { namedCurve: 'secp384r1' }).privateKey.export({ type: 'pkcs8', format: 'pem' });
      const rsa = generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey.export({ type: 'pkcs8', format: 'pem' });
      writeFileSync(join(dir, 'empty.p8'), '');
      writeFileSync(join(dir, 'cert.p8'), selfSignedPem);
      writeFileSync(join(dir, 'p384.p8'), p384);
      writeFileSync(join(dir, 'rsa.p8'), rsa);
      writeFileSync(join(dir, 'huge.p8'), Buffer.alloc(1024 * 1024, 'A'));
      const cases: Array<[string, RegExp]> = [
        [join(dir, 'nope.p8'), /: no such file$/],
        [join(dir, 'empty.p8', 'below'), /: no such file \(a part of the path is not a directory\)$/],
        [dir, /: is a directory, not a file$/],
        [join(dir, 'empty.p8'), /: is empty$/],
        [join(dir, 'cert.p8'), /: is not a PEM private key \(expected the \.p8 file from Apple\)$/],
        [join(dir, 'p384.p8'), /: is not an EC P-256 private key/],
        [join(dir, 'rsa.p8'), /: is not an EC P-256 private key/],
        [join(dir, 'huge.p8'), /: is 1048576 bytes, far too large/],
      ];
      for (const [path, expected] of cases) {
        const problems = problemsOf({ ...APNS, APNS_KEY_PATH: path });
        assert.equal(problems.length, 1, problems.join('\n'));
        assert.ok(problems[0]!.startsWith(`APNS_KEY_PATH=${JSON.stringify(path)}: `), problems[0]);
        assert.match(problems[0]!, expected);
      }
    });
  });

  test('a relative APNS_KEY_PATH that is missing says where it looked', () => {
    assert.deepEqual(problemsOf({ ...APNS, APNS_KEY_PATH: 'keys/AuthKey.p8' }), [
      `APNS_KEY_PATH="keys/AuthKey.p8": no such file (looked for ${join(process.cwd(), 'keys', 'AuthKey.p8')})`,
    ]);
  });

  test('an unreadable key file is named as such', { skip: process.getuid?.() === 0 && 'root reads any file' }, () => {
    withDir((dir) => {
      const path = join(dir, 'AuthKey.p8');
      writeFileSync(path, key.privateKeyPem, { mode: 0o000 });
      assert.deepEqual(problemsOf({ ...APNS, APNS_KEY_PATH: path }), [
        `APNS_KEY_PATH=${JSON.stringify(path)}: cannot be read (permission denied)`,
      ]);
    });
  });

  test('APNS_KEY that is not a key is named but never quoted; one with escaped newlines is fine', () => {
    const secretish = 'MIGTAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBHkwdwIBAQQg-SECRET';
    const problems = problemsOf({ ...APNS, APNS_KEY: secretish });
    assert.deepEqual(problems, ['APNS_KEY is not a PEM private key (expected the .p8 file from Apple)']);
    assert.ok(!problems.join().includes('SECRET'));
    assert.ok(loadConfig({ ...APNS, APNS_KEY: key.privateKeyPem.replace(/\n/g, '\\n') }).apns);
  });

  test('any APNS_KEY text is either a key or one problem that never quotes it (property)', () => {
    const pemLike = fc
      .tuple(
        fc.constantFrom('', '-----BEGIN PRIVATE KEY-----\n', '-----BEGIN EC PRIVATE KEY-----\n'),
        fc.base64String({ minLength: 12, maxLength: 400 }),
      )
      .map(([header, body]) => `${header}${body}${header ? '\n-----END PRIVATE KEY-----' : ''}`);
    fc.assert(
      fc.property(fc.oneof(pemLike, fc.string({ minLength: 12, maxLength: 200, unit: 'binary' })), (text) => {
        const problems = problemsOf({ ...APNS, APNS_KEY: text });
        if (text.trim() === '') return;
        assert.equal(problems.length, 1);
        assert.match(problems[0]!, /^APNS_KEY is not (a PEM|an EC P-256) private key/);
        const secret = text.trim().slice(-12);
        assert.ok(!problems[0]!.includes(secret), 'the key text is not quoted');
      }),
      { numRuns: 200 },
    );
  });

  test('APNS_CA_PATH: missing, not PEM, or a certificate that does not parse', () => {
    withDir((dir) => {
      writeFileSync(join(dir, 'key.pem'), key.privateKeyPem);
      const broken = selfSignedPem.replace(/^(-----BEGIN CERTIFICATE-----\n)(.{10})/, '$1AAAAAAAAAA');
      writeFileSync(join(dir, 'broken.pem'), `${selfSignedPem}\n${broken}`);
      const base = { ...APNS, APNS_KEY: key.privateKeyPem };
      assert.deepEqual(problemsOf({ ...base, APNS_CA_PATH: join(dir, 'nope.pem') }), [
        `APNS_CA_PATH=${JSON.stringify(join(dir, 'nope.pem'))}: no such file`,
      ]);
      assert.deepEqual(problemsOf({ ...base, APNS_CA_PATH: join(dir, 'key.pem') }), [
        `APNS_CA_PATH=${JSON.stringify(join(dir, 'key.pem'))}: holds no PEM certificate (expected "-----BEGIN CERTIFICATE-----")`,
      ]);
      assert.deepEqual(problemsOf({ ...base, APNS_CA_PATH: join(dir, 'broken.pem') }), [
        `APNS_CA_PATH=${JSON.stringify(join(dir, 'broken.pem'))}: certificate 2 of 2 does not parse`,
      ]);
    });
  });

  test('every file problem is reported at once, beside the other problems', () => {
    const problems = problemsOf({
      ...APNS,
      APNS_KEY_PATH: '/nonexistent/AuthKey.p8',
      APNS_CA_PATH: '/nonexistent/ca.pem',
      JWT_SECRET: 'short',
    });
    assert.equal(problems.length, 3, problems.join('\n'));
  });

  test('DATABASE_URL: a SQLite path that cannot be a database file', () => {
    withDir((dir) => {
      writeFileSync(join(dir, 'file'), 'x');
      assert.deepEqual(problemsOf({ DATABASE_URL: join(dir, 'file', 'navi.db') }), [
        `DATABASE_URL=${JSON.stringify(join(dir, 'file', 'navi.db'))}: cannot be created: ${join(dir, 'file')} is not a directory`,
      ]);
      assert.deepEqual(problemsOf({ DATABASE_URL: dir }), [
        `DATABASE_URL=${JSON.stringify(dir)}: is a directory; give the path of the database file inside it`,
      ]);
      // Directories that do not exist yet are created at start.
      assert.deepEqual(problemsOf({ DATABASE_URL: join(dir, 'a', 'b', 'navi.db') }), []);
    });
  });
});

describe('APNs topics', () => {
  const key = createTestApnsKey().privateKeyPem;
  test('the watch app is pushed under APNS_BUNDLE_ID + ".watchkitapp" unless APNS_WATCH_BUNDLE_ID says otherwise', () => {
    const conventional = loadConfig({ ...APNS, APNS_KEY: key }).apns;
    assert.deepEqual([conventional?.bundleId, conventional?.watchBundleId], ['app.navi', 'app.navi.watchkitapp']);
    const own = loadConfig({ ...APNS, APNS_KEY: key, APNS_WATCH_BUNDLE_ID: 'app.navi.watch' }).apns;
    assert.deepEqual([own?.bundleId, own?.watchBundleId], ['app.navi', 'app.navi.watch']);
  });
});
