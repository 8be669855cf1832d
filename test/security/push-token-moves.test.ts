import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { PushTokenMovesTable } from '../../src/modules/devices/push-token-moves.ts';
import { startTestApp, type TestApp } from '../support/app.ts';
import { addDevice, signUp, type User } from '../support/clients.ts';

/**
 * Issue 9, finding 10: registering a push token that another user's device
 * holds takes it from that device, silently. It stays allowed (an app
 * reinstalled as a new anonymous account keeps its APNs token), but the
 * device it was taken from now shows when, until it registers a token again.
 */
const TOKEN = 'ab'.repeat(32);
const register = (user: User, token = TOKEN) =>
  user.request('PUT', '/v1/devices/current/push-token', { provider: 'apns', token, environment: 'production' });
const myDevice = async (user: User) => {
  const me = (await user.request('GET', '/v1/me')).json<{
    devices: Array<{ id: string; push: unknown; pushTokenMovedAt: string | null }>;
  }>();
  return me.devices.find((d) => d.id === user.deviceId)!;
};

const movesIn = (t: TestApp) =>
  t.ctx.database.db.$extendTables<{ push_token_moves: PushTokenMovesTable }>().selectFrom('push_token_moves').selectAll().execute();

describe('push tokens moved between devices', () => {
  test("the device a token was taken from sees when; the taker's device has it", async () => {
    const t = await startTestApp();
    try {
      const alex = await signUp(t);
      const other = await signUp(t);
      assert.equal((await register(alex)).statusCode, 204);
      assert.equal((await myDevice(alex)).pushTokenMovedAt, null);

      const before = Date.now();
      assert.equal((await register(other, TOKEN.toUpperCase())).statusCode, 204);
      const taken = await myDevice(alex);
      assert.equal(taken.push, null);
      assert.ok(taken.pushTokenMovedAt && Date.parse(taken.pushTokenMovedAt) >= before - 1000, JSON.stringify(taken));
      assert.deepEqual((await myDevice(other)).push, { provider: 'apns', environment: 'production', valid: true });
      assert.equal((await myDevice(other)).pushTokenMovedAt, null);

      // Registering again (the app does at every launch) takes it back, and the mark goes.
      assert.equal((await register(alex)).statusCode, 204);
      assert.equal((await myDevice(alex)).pushTokenMovedAt, null);
      assert.notEqual((await myDevice(alex)).push, null);
      assert.ok((await myDevice(other)).pushTokenMovedAt !== null);
      // An operator can follow every move in the database, including to which device.
      const moves = await movesIn(t);
      assert.deepEqual(
        new Set(moves.map((m) => `${m.from_device_id} -> ${m.to_device_id} ${Number(m.same_user)}`)),
        new Set([`${alex.deviceId} -> ${other.deviceId} 0`, `${other.deviceId} -> ${alex.deviceId} 0`]),
      );
    } finally {
      await t.close();
    }
  });

  test('a move between two devices of one user is recorded as such; removing a device removes its records', async () => {
    const t = await startTestApp();
    try {
      const alex = await signUp(t);
      const watch = await addDevice(t, alex);
      await register(alex);
      await register(watch);
      assert.ok((await myDevice(alex)).pushTokenMovedAt !== null);
      assert.deepEqual(
        (await movesIn(t)).map((m) => [m.from_device_id, m.to_device_id, Number(m.same_user)]),
        [[alex.deviceId, watch.deviceId, 1]],
      );
      assert.equal((await watch.request('DELETE', `/v1/devices/${alex.deviceId}`)).statusCode, 204);
      assert.deepEqual(await movesIn(t), []);
    } finally {
      await t.close();
    }
  });
});
