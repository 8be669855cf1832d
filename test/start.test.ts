import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createTestDatabase } from './support/database.ts';
import { FakeApns, createTestApnsKey } from './support/fake-apns.ts';
import { ServerProcess } from './support/server-process.ts';

/**
 * What an operator sees when the start fails: one line per problem on
 * stderr, `navi: ` and the variable to fix, exit code 1, and no stack trace.
 */
describe('a start that cannot succeed says why in one line', () => {
  let dir: string;
  let base: Record<string, string>;
  const key = createTestApnsKey();
  const apns = { APNS_KEY_ID: key.keyId, APNS_TEAM_ID: key.teamId, APNS_BUNDLE_ID: 'app.navi.ios' };
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'navi-start-'));
    base = { DATABASE_URL: join(dir, 'navi.db'), NODE_ENV: 'development', PORT: '0' };
  });
  after(() => rm(dir, { recursive: true, force: true }));

  const assertOneLine = (result: { code: number | null; output: string; stderr: string }, expected: RegExp) => {
    assert.equal(result.code, 1, result.output);
    const lines = result.stderr.trimEnd().split('\n');
    assert.equal(lines.length, 1, `one line on stderr, got:\n${result.stderr}`);
    assert.match(lines[0]!, expected);
    assert.doesNotMatch(result.output, /^\s+at /m, 'no stack trace');
  };

  test('APNS_KEY_PATH naming a missing file', async () => {
    const path = join(dir, 'AuthKey_ABC123DEFG.p8');
    assertOneLine(
      await ServerProcess.run({ ...base, ...apns, APNS_KEY_PATH: path }),
      new RegExp(`^navi: APNS_KEY_PATH="${path}": no such file$`),
    );
  });

  test('APNS_KEY_PATH naming a file that is not a key, and APNS_CA_PATH naming one that is not a certificate', async () => {
    const notKey = join(dir, 'notes.txt');
    await writeFile(notKey, 'my APNs key is in the vault\n');
    assertOneLine(
      await ServerProcess.run({ ...base, ...apns, APNS_KEY_PATH: notKey }),
      /^navi: APNS_KEY_PATH=".*notes\.txt": is not a PEM private key \(expected the \.p8 file from Apple\)$/,
    );
    assertOneLine(
      await ServerProcess.run({ ...base, ...apns, APNS_KEY: key.privateKeyPem, APNS_CA_PATH: notKey }),
      /^navi: APNS_CA_PATH=".*notes\.txt": holds no PEM certificate/,
    );
  });

  test('APNS_KEY that is not a key, without quoting it', async () => {
    const result = await ServerProcess.run({ ...base, ...apns, APNS_KEY: 'hunter2-not-a-key' });
    assertOneLine(result, /^navi: APNS_KEY is not a PEM private key/);
    assert.doesNotMatch(result.output, /hunter2/);
  });

  test('PORT already taken by another process', async () => {
    const squatter = createServer();
    await new Promise<void>((resolve) => squatter.listen(0, '127.0.0.1', resolve));
    const { port } = squatter.address() as AddressInfo;
    try {
      assertOneLine(
        await ServerProcess.run({ ...base, HOST: '127.0.0.1', PORT: String(port) }),
        new RegExp(`^navi: PORT=${port}: 127\\.0\\.0\\.1:${port} is already in use`),
      );
    } finally {
      squatter.close();
    }
  });

  test('DATABASE_URL naming a PostgreSQL nobody listens on, without printing its password', async () => {
    const result = await ServerProcess.run({
      ...base,
      DATABASE_URL: 'postgres://navi:s3cret-pw@127.0.0.1:1/navi',
      JWT_SECRET: randomBytes(32).toString('base64url'),
    });
    assertOneLine(result, /^navi: DATABASE_URL \(PostgreSQL at 127\.0\.0\.1:1\/navi as navi\): connection refused/);
    assert.doesNotMatch(result.output, /s3cret-pw/);
  });
});

describe('a key that parses but Apple rejects', () => {
  test('keeps the service up, with push reported failing', async (t) => {
    const database = await createTestDatabase();
    t.after(() => database.drop());
    const apple = createTestApnsKey();
    const ours = createTestApnsKey();
    // The fake knows Apple's idea of our key; we sign with another one, as after a revoked or mistyped key.
    const fake = await FakeApns.start({ ...apple, bundleId: 'app.navi.ios' });
    t.after(() => fake.close());
    const { config } = database;
    const server = await database.whileMigrating(() =>
      ServerProcess.start({
        DATABASE_URL: config.kind === 'sqlite' ? config.path : config.url,
        JWT_SECRET: randomBytes(32).toString('base64url'),
        NODE_ENV: 'development',
        APNS_KEY: ours.privateKeyPem,
        APNS_KEY_ID: apple.keyId,
        APNS_TEAM_ID: apple.teamId,
        APNS_BUNDLE_ID: 'app.navi.ios',
        APNS_ORIGIN: fake.origin,
        APNS_CA_PATH: fake.caPath,
      }),
    );
    t.after(() => server.stop());

    assert.equal((await server.call('GET', '/health')).body.checks.push.status, 'ok');
    const alex = (await server.call('POST', '/v1/auth/register', { body: { platform: 'ios' } })).body;
    const sam = (await server.call('POST', '/v1/auth/register', { body: { platform: 'ios' } })).body;
    const { code } = (await server.call('POST', '/v1/pairing-codes', { token: alex.accessToken })).body;
    assert.equal((await server.call('POST', '/v1/pairings', { token: sam.accessToken, body: { code } })).status, 201);
    const pushToken = { provider: 'apns', token: randomBytes(32).toString('hex'), environment: 'sandbox' };
    assert.equal((await server.call('PUT', '/v1/devices/current/push-token', { token: sam.accessToken, body: pushToken })).status, 204);

    const tap = { to: sam.userId, intensity: 'light', pattern: 'single' };
    assert.equal((await server.call('POST', '/v1/taps', { token: alex.accessToken, body: tap })).status, 201);
    await fake.waitForRequests(1);
    await fake.waitFor(() => fake.requests[0]?.response !== undefined, 'the answer');
    assert.deepEqual(fake.requests[0]?.response, {
      status: 403,
      reason: 'InvalidProviderToken',
      apnsId: fake.requests[0]?.headers['apns-id'],
    });

    await server.waitForOutput(/APNs rejected our credentials/);
    const health = await server.call('GET', '/health');
    assert.deepEqual([health.status, health.body.status, health.body.checks.push.status], [200, 'degraded', 'degraded']);
    assert.equal((await server.call('POST', '/v1/taps', { token: alex.accessToken, body: tap })).status, 201, 'taps still work');
    assert.equal(server.child.exitCode, null, 'still running');
  });
});

describe('a start that succeeds', () => {
  test('says where the service and its API reference are', async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'navi-start-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    const server = await ServerProcess.start({ DATABASE_URL: join(dir, 'navi.db'), NODE_ENV: 'development' });
    t.after(() => server.stop());
    const line = server.output.split('\n').find((output) => output.includes('navi is listening'));
    assert.equal(JSON.parse(line ?? '{}').msg, `navi is listening on ${server.url}; API reference at ${server.url}/docs`);
    assert.equal((await fetch(`${server.url}/docs`)).status, 200);
  });
});
