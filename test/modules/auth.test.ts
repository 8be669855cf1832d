import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { afterEach, beforeEach, describe, test } from 'node:test';
import { ManualClock } from '../../src/clock.ts';
import { startTestApp, type TestApp } from '../support/app.ts';
import { addDevice, asUser, problemOf, signUp, type Session } from '../support/clients.ts';

describe('accounts and tokens', () => {
  let t: TestApp;
  let clock: ManualClock;
  beforeEach(async () => {
    clock = new ManualClock(Date.now());
    t = await startTestApp({ clock });
  });
  afterEach(() => t.close());

  const refresh = (refreshToken: string) => t.app.inject({ method: 'POST', url: '/v1/auth/refresh', payload: { refreshToken } });

  test('register creates a user with its first device and working tokens', async () => {
    const response = await t.app.inject({ method: 'POST', url: '/v1/auth/register', payload: { platform: 'ios', name: "Sam's iPhone" } });
    assert.equal(response.statusCode, 201);
    const session = response.json<Session & { refreshTokenExpiresAt: string }>();
    assert.match(session.userId, /^[0-9a-f-]{36}$/);
    assert.equal(new Date(session.accessTokenExpiresAt).getTime(), Math.floor(clock.now() / 1000) * 1000 + 900_000);
    const me = await asUser(t, session).request('GET', '/v1/me');
    assert.equal(me.statusCode, 200);
    const body = me.json();
    assert.equal(body.user.id, session.userId);
    assert.deepEqual(
      body.devices.map((d: { id: string; platform: string; name: string; current: boolean }) => [d.id, d.platform, d.name, d.current]),
      [[session.deviceId, 'ios', "Sam's iPhone", true]],
    );
  });

  test('a second device of the same user gets its own token family', async () => {
    const phone = await signUp(t);
    const watch = await addDevice(t, phone, 'watchos');
    assert.equal(watch.userId, phone.userId);
    assert.notEqual(watch.deviceId, phone.deviceId);
    const me = (await watch.request('GET', '/v1/me')).json();
    assert.deepEqual(me.devices.map((d: { current: boolean }) => d.current).sort(), [false, true]);
  });

  test('refresh rotates: the new pair works and the old refresh token is spent', async () => {
    const user = await signUp(t);
    clock.advance(1000);
    const first = await refresh(user.refreshToken);
    assert.equal(first.statusCode, 200);
    const rotated = first.json<Session>();
    assert.notEqual(rotated.refreshToken, user.refreshToken);
    assert.equal((await asUser(t, rotated).request('GET', '/v1/me')).statusCode, 200);
    const second = await refresh(rotated.refreshToken);
    assert.equal(second.statusCode, 200);
  });

  test('a client that lost the refresh response may retry once within the grace window', async () => {
    const user = await signUp(t);
    const lost = await refresh(user.refreshToken);
    assert.equal(lost.statusCode, 200);
    clock.advance(5_000);
    const retried = await refresh(user.refreshToken);
    assert.equal(retried.statusCode, 200);
    // The pair from the lost response was superseded; the retried pair works.
    const current = retried.json<Session>();
    assert.equal((await refresh(current.refreshToken)).statusCode, 200);
  });

  test('replaying a rotated refresh token after the grace window signs the device out', async () => {
    const user = await signUp(t);
    const rotated = (await refresh(user.refreshToken)).json<Session>();
    clock.advance(31_000);
    const replay = await refresh(user.refreshToken);
    assert.equal(replay.statusCode, 401);
    assert.equal(problemOf(replay).code, 'INVALID_TOKEN');
    assert.match(problemOf(replay).detail, /already used/);
    // The whole family is gone: the legitimate newer tokens die too.
    assert.equal((await refresh(rotated.refreshToken)).statusCode, 401);
    assert.equal((await asUser(t, rotated).request('GET', '/v1/me')).statusCode, 401);
  });

  test('logout revokes the device: its access and refresh tokens stop working, other devices keep theirs', async () => {
    const phone = await signUp(t);
    const watch = await addDevice(t, phone);
    assert.equal((await watch.request('POST', '/v1/auth/logout')).statusCode, 204);
    const after = await watch.request('GET', '/v1/me');
    assert.equal(after.statusCode, 401);
    assert.equal(problemOf(after).code, 'INVALID_TOKEN');
    assert.equal((await refresh(watch.refreshToken)).statusCode, 401);
    const me = (await phone.request('GET', '/v1/me')).json();
    assert.deepEqual(
      me.devices.map((d: { id: string }) => d.id),
      [phone.deviceId],
    );
  });

  test('access tokens expire after their lifetime', async () => {
    const user = await signUp(t);
    clock.advance(901_000);
    const response = await user.request('GET', '/v1/me');
    assert.equal(response.statusCode, 401);
    assert.equal(problemOf(response).code, 'INVALID_TOKEN');
    assert.match(problemOf(response).detail, /expired/);
    assert.equal((await refresh(user.refreshToken)).statusCode, 200);
  });

  test('tampered, foreign, wrong-type and missing tokens are refused with 401', async () => {
    const user = await signUp(t);
    const [header, payload, signature] = user.accessToken.split('.') as [string, string, string];
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString());
    const forged = Buffer.from(JSON.stringify({ ...claims, sub: '00000000-0000-4000-8000-000000000000' })).toString('base64url');
    const sign = (input: string, key: string) => createHmac('sha256', key).update(input).digest('base64url');
    const none = Buffer.from(JSON.stringify({ alg: 'none', typ: 'JWT' })).toString('base64url');
    const cases: Array<[string, string | undefined, string]> = [
      ['tampered payload', `${header}.${forged}.${signature}`, 'INVALID_TOKEN'],
      [
        'signed with another key',
        `${header}.${payload}.${sign(`${header}.${payload}`, 'another-secret-that-is-long-enough!!')}`,
        'INVALID_TOKEN',
      ],
      ['alg none', `${none}.${payload}.`, 'INVALID_TOKEN'],
      ['refresh token as access token', user.refreshToken, 'INVALID_TOKEN'],
      ['garbage', 'not-a-token', 'INVALID_TOKEN'],
      ['no token', undefined, 'UNAUTHORIZED'],
    ];
    for (const [name, token, code] of cases) {
      const response = await t.app.inject({
        method: 'GET',
        url: '/v1/me',
        headers: token === undefined ? {} : { authorization: `Bearer ${token}` },
      });
      assert.equal(response.statusCode, 401, name);
      assert.equal(problemOf(response).code, code, name);
      assert.equal(response.headers['content-type'], 'application/problem+json; charset=utf-8', name);
    }
    const wrongScheme = await t.app.inject({ method: 'GET', url: '/v1/me', headers: { authorization: `Basic ${user.accessToken}` } });
    assert.equal(problemOf(wrongScheme).code, 'INVALID_TOKEN');
    const accessAsRefresh = await refresh(user.accessToken);
    assert.equal(accessAsRefresh.statusCode, 401);
    assert.match(problemOf(accessAsRefresh).detail, /access token cannot be used to refresh/);
  });

  test('registration is rate limited per client address', async () => {
    await t.close();
    t = await startTestApp({ clock, env: { RATE_LIMIT_AUTH_PER_MINUTE: '3' } });
    for (let i = 0; i < 3; i++) await signUp(t);
    const limited = await t.app.inject({ method: 'POST', url: '/v1/auth/register', payload: { platform: 'ios' } });
    assert.equal(limited.statusCode, 429);
    assert.equal(problemOf(limited).code, 'RATE_LIMITED');
    assert.ok(Number(limited.headers['retry-after']) >= 1);
    clock.advance(60_000);
    assert.equal((await t.app.inject({ method: 'POST', url: '/v1/auth/register', payload: { platform: 'ios' } })).statusCode, 201);
  });
});
