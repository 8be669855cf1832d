import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { DEV_SECRET_FILE } from '../src/jwt-secret.ts';
import { createTestDatabase, type TestDatabase } from './support/database.ts';
import { ServerProcess } from './support/server-process.ts';
import { WsClient } from './support/ws-client.ts';

/**
 * The whole story from the apps' side, against the real server process on a
 * SQLite file: sign up, pair, tap both ways, read history, survive a restart,
 * unpair, delete the account.
 */
describe("the real server, from a client's point of view", () => {
  let database: TestDatabase;
  let env: Record<string, string>;
  before(async () => {
    database = await createTestDatabase();
    const { config } = database;
    env =
      config.kind === 'sqlite'
        ? // The embedded default: the development secret is created beside the database.
          { DATABASE_URL: config.path, NODE_ENV: 'development' }
        : { DATABASE_URL: config.url, NODE_ENV: 'development', JWT_SECRET: randomBytes(32).toString('base64url') };
  });
  after(() => database.drop());

  test('register, pair, tap both ways, page history, restart, unpair, delete', async () => {
    let server = await database.whileMigrating(() => ServerProcess.start(env));
    try {
      const alex = (await server.call('POST', '/v1/auth/register', { body: { platform: 'ios', name: "Alex's iPhone" } })).body;
      const sam = (await server.call('POST', '/v1/auth/register', { body: { platform: 'ios' } })).body;
      const samWatch = (await server.call('POST', '/v1/devices', { token: sam.accessToken, body: { platform: 'watchos' } })).body;
      await server.call('PATCH', '/v1/me', { token: alex.accessToken, body: { displayName: 'Alex' } });
      const pushToken = 'ab'.repeat(32);
      assert.equal(
        (
          await server.call('PUT', '/v1/devices/current/push-token', {
            token: samWatch.accessToken,
            body: { provider: 'apns', token: pushToken, environment: 'production' },
          })
        ).status,
        204,
      );

      const { code } = (await server.call('POST', '/v1/pairing-codes', { token: alex.accessToken })).body;
      const paired = await server.call('POST', '/v1/pairings', { token: sam.accessToken, body: { code } });
      assert.equal(paired.status, 201);
      assert.equal(paired.body.pairing.partner.displayName, 'Alex');

      const samSocket = await WsClient.connect(`${server.url.replace('http', 'ws')}/v1/ws`, sam.accessToken);
      const ids: string[] = [];
      for (let i = 0; i < 6; i++) {
        const [from, to] = i % 2 === 0 ? [alex, sam] : [sam, alex];
        const sent = await server.call('POST', '/v1/taps', {
          token: from.accessToken,
          body: { to: to.userId, intensity: 'medium', pattern: 'heartbeat' },
        });
        assert.equal(sent.status, 201);
        ids.push(sent.body.tap.id);
      }
      const live = await samSocket.next('tap', (f) => (f.tap as { id: string }).id === ids[4]);
      assert.equal((live.tap as { from: string }).from, alex.userId);
      samSocket.send({ type: 'ack', tapId: ids[0], status: 'seen' });
      await new Promise((resolve) => setTimeout(resolve, 100));

      const page1 = (await server.call('GET', '/v1/taps?limit=4', { token: alex.accessToken })).body;
      const page2 = (await server.call('GET', `/v1/taps?limit=4&before=${page1.nextCursor}`, { token: alex.accessToken })).body;
      assert.deepEqual(
        [...page1.taps, ...page2.taps].map((tap: { id: string }) => tap.id),
        [...ids].reverse(),
      );
      assert.equal(page2.taps.at(-1).status, 'seen');

      // Stopping closes sockets with "service restart", so apps reconnect with their cursor.
      assert.equal(await server.stop('SIGTERM'), 0);
      assert.equal((await samSocket.closed).code, 1012);
      if (database.config.kind === 'sqlite') {
        assert.ok(existsSync(join(dirname(database.config.path), DEV_SECRET_FILE)), 'the development secret is kept beside the database');
      }
      const logs = server.output;
      for (const secret of [alex.accessToken, alex.refreshToken, sam.accessToken, samWatch.refreshToken, pushToken, code]) {
        assert.ok(!logs.includes(secret), 'no token, push token or pairing code in the logs');
      }
      assert.match(logs, /"requestId":"[^"]+".*"route":"\/v1\/taps"/);

      server = await database.whileMigrating(() => ServerProcess.start(env));
      // Tokens from before the restart still work, and everything is there.
      const me = await server.call('GET', '/v1/me', { token: sam.accessToken });
      assert.equal(me.status, 200);
      assert.deepEqual(me.body.devices.map((d: { id: string }) => d.id).sort(), [sam.deviceId, samWatch.deviceId].sort());
      assert.equal(me.body.devices.find((d: { id: string }) => d.id === samWatch.deviceId).push.environment, 'production');
      assert.equal(me.body.pairings[0].partner.userId, alex.userId);
      const history = (await server.call('GET', '/v1/taps?limit=100', { token: sam.accessToken })).body;
      assert.deepEqual(
        history.taps.map((tap: { id: string }) => tap.id),
        [...ids].reverse(),
      );
      const refreshed = await server.call('POST', '/v1/auth/refresh', { body: { refreshToken: alex.refreshToken } });
      assert.equal(refreshed.status, 200);
      const resumed = await WsClient.connect(
        `${server.url.replace('http', 'ws')}/v1/ws?cursor=${live.tap && (live.tap as { cursor: string }).cursor}`,
        sam.accessToken,
      );
      const done = await resumed.next('sync.done');
      assert.deepEqual(
        resumed.of('tap').map((f) => (f.tap as { id: string }).id),
        [ids[5]],
      );
      assert.equal(done.cursor, resumed.frames[0]!.cursor, 'caught up to the head hello announced');

      const pairingId = me.body.pairings[0].id;
      assert.equal((await server.call('DELETE', `/v1/pairings/${pairingId}`, { token: refreshed.body.accessToken })).status, 204);
      assert.deepEqual((await server.call('GET', '/v1/pairings', { token: sam.accessToken })).body.pairings, []);
      assert.equal(
        (
          await server.call('POST', '/v1/taps', {
            token: sam.accessToken,
            body: { to: alex.userId, intensity: 'light', pattern: 'single' },
          })
        ).body.code,
        'NOT_PAIRED',
      );

      assert.equal((await server.call('DELETE', '/v1/me', { token: sam.accessToken })).status, 204);
      assert.equal((await resumed.closed).code, 4410);
      assert.equal((await server.call('GET', '/v1/me', { token: samWatch.accessToken })).status, 401);
      const alexView = (await server.call('GET', '/v1/taps?limit=100', { token: refreshed.body.accessToken })).body;
      assert.deepEqual(alexView.taps, [], "the deleted account's taps are gone for the partner too");
    } finally {
      await server.stop('SIGTERM');
    }
  });

  test('production refuses to start without a strong JWT_SECRET, with a clear message', async () => {
    const missing = await ServerProcess.run({ DATABASE_URL: env.DATABASE_URL!, NODE_ENV: 'production' });
    assert.equal(missing.code, 1);
    assert.match(missing.output, /JWT_SECRET is required when NODE_ENV=production/);
    const weak = await ServerProcess.run({ DATABASE_URL: env.DATABASE_URL!, NODE_ENV: 'production', JWT_SECRET: 'short' });
    assert.equal(weak.code, 1);
    assert.match(weak.output, /JWT_SECRET must be at least 32 characters/);
    const typo = await ServerProcess.run({ ...env, PORT: 'eighty' });
    assert.equal(typo.code, 1);
    assert.match(typo.output, /PORT="eighty" must be integer/);
  });
});
