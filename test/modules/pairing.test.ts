import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, test } from 'node:test';
import { ManualClock } from '../../src/clock.ts';
import { startTestApp, type TestApp } from '../support/app.ts';
import { pair, problemOf, signUp, type User } from '../support/clients.ts';

describe('pairing', () => {
  let t: TestApp;
  let clock: ManualClock;
  let alex: User;
  let sam: User;
  beforeEach(async () => {
    clock = new ManualClock(Date.now());
    t = await startTestApp({ clock });
    alex = await signUp(t, { displayName: 'Alex' });
    sam = await signUp(t, { displayName: 'Sam' });
  });
  afterEach(() => t.close());

  const newCode = async (user: User) => (await user.request('POST', '/v1/pairing-codes')).json<{ code: string; expiresAt: string }>();

  test('a code is 8 Crockford base32 symbols shown as XXXX-XXXX, valid for 10 minutes', async () => {
    const response = await alex.request('POST', '/v1/pairing-codes');
    assert.equal(response.statusCode, 201);
    const { code, expiresAt } = response.json();
    assert.match(code, /^[0-9ABCDEFGHJKMNPQRSTVWXYZ]{4}-[0-9ABCDEFGHJKMNPQRSTVWXYZ]{4}$/);
    assert.equal(new Date(expiresAt).getTime(), clock.now() + 600_000);
    const codes = new Set(await Promise.all(Array.from({ length: 10 }, async () => (await newCode(alex)).code)));
    assert.equal(codes.size, 10);
  });

  test('redeeming makes both partners; typing is forgiving about case, hyphens, spaces and look-alikes', async () => {
    const { code } = await newCode(alex);
    const typed = ` ${code.toLowerCase().replace('-', ' ').replace(/0/g, 'o').replace(/1/g, 'l')} `;
    const response = await sam.request('POST', '/v1/pairings', { code: typed });
    assert.equal(response.statusCode, 201);
    const { pairing } = response.json();
    assert.equal(pairing.partner.userId, alex.userId);
    assert.equal(pairing.partner.displayName, 'Alex');
    const alexView = (await alex.request('GET', '/v1/pairings')).json();
    assert.deepEqual(
      alexView.pairings.map((p: { id: string; partner: { userId: string } }) => [p.id, p.partner.userId]),
      [[pairing.id, sam.userId]],
    );
    const status = (await alex.request('GET', `/v1/pairing-codes/${code}`)).json();
    assert.equal(status.status, 'used');
    assert.equal(status.pairing.id, pairing.id);
    assert.equal(status.pairing.partner.userId, sam.userId);
  });

  test('codes are single-use: a second redeemer gets PAIRING_CODE_USED', async () => {
    const { code } = await newCode(alex);
    await sam.request('POST', '/v1/pairings', { code });
    const third = await signUp(t);
    const again = await third.request('POST', '/v1/pairings', { code });
    assert.equal(again.statusCode, 409);
    assert.equal(problemOf(again).code, 'PAIRING_CODE_USED');
  });

  test('two people racing for one code: exactly one pairing, one clear error', async () => {
    const { code } = await newCode(alex);
    const racers = await Promise.all([signUp(t), signUp(t), signUp(t), signUp(t)]);
    const results = await Promise.all(racers.map((r) => r.request('POST', '/v1/pairings', { code })));
    const statuses = results.map((r) => r.statusCode).sort();
    assert.deepEqual(statuses, [201, 409, 409, 409]);
    for (const r of results.filter((r) => r.statusCode === 409)) assert.equal(problemOf(r).code, 'PAIRING_CODE_USED');
    assert.equal((await alex.request('GET', '/v1/pairings')).json().pairings.length, 1);
  });

  test('expired, unknown, own and already-paired codes each have their own error', async () => {
    const { code: expired } = await newCode(alex);
    clock.advance(600_001);
    let r = await sam.request('POST', '/v1/pairings', { code: expired });
    assert.equal(r.statusCode, 410);
    assert.equal(problemOf(r).code, 'PAIRING_CODE_EXPIRED');
    assert.equal((await alex.request('GET', `/v1/pairing-codes/${expired}`)).json().status, 'expired');

    r = await sam.request('POST', '/v1/pairings', { code: '0000-0000' });
    assert.equal(r.statusCode, 404);
    assert.equal(problemOf(r).code, 'PAIRING_CODE_NOT_FOUND');

    const { code: own } = await newCode(alex);
    r = await alex.request('POST', '/v1/pairings', { code: own });
    assert.equal(r.statusCode, 422);
    assert.equal(problemOf(r).code, 'CANNOT_PAIR_WITH_SELF');

    await pair(alex, sam);
    const { code: second } = await newCode(alex);
    r = await sam.request('POST', '/v1/pairings', { code: second });
    assert.equal(r.statusCode, 409);
    assert.equal(problemOf(r).code, 'ALREADY_PAIRED');

    r = await sam.request('POST', '/v1/pairings', { code: 'ABC' });
    assert.equal(r.statusCode, 400);
    assert.equal(problemOf(r).code, 'INVALID_INPUT');
  });

  test('a user may hold a limited number of pairings', async () => {
    await t.close();
    t = await startTestApp({ clock, env: { MAX_PAIRINGS_PER_USER: '2' } });
    const hub = await signUp(t);
    await pair(hub, await signUp(t));
    await pair(hub, await signUp(t));
    const { code } = (await hub.request('POST', '/v1/pairing-codes')).json();
    const r = await (await signUp(t)).request('POST', '/v1/pairings', { code });
    assert.equal(r.statusCode, 409);
    assert.equal(problemOf(r).code, 'PAIRING_LIMIT_REACHED');
    // The refused redemption did not burn the code.
    assert.equal((await hub.request('GET', `/v1/pairing-codes/${code}`)).json().status, 'pending');
  });

  test('only the creator sees or cancels a code; a cancelled code cannot be redeemed', async () => {
    const { code } = await newCode(alex);
    assert.equal(problemOf(await sam.request('GET', `/v1/pairing-codes/${code}`)).code, 'PAIRING_CODE_NOT_FOUND');
    assert.equal((await sam.request('DELETE', `/v1/pairing-codes/${code}`)).statusCode, 404);
    const pending = (await alex.request('GET', `/v1/pairing-codes/${code}`)).json();
    assert.equal(pending.status, 'pending');
    assert.equal(pending.pairing, undefined);
    assert.equal((await alex.request('DELETE', `/v1/pairing-codes/${code}`)).statusCode, 204);
    assert.equal(problemOf(await sam.request('POST', '/v1/pairings', { code })).code, 'PAIRING_CODE_NOT_FOUND');
  });

  test('either partner may unpair; a stranger cannot, and learns nothing', async () => {
    const pairingId = await pair(alex, sam);
    const stranger = await signUp(t);
    const denied = await stranger.request('DELETE', `/v1/pairings/${pairingId}`);
    assert.equal(denied.statusCode, 404);
    assert.equal(problemOf(denied).code, 'NOT_FOUND');
    assert.equal((await sam.request('DELETE', `/v1/pairings/${pairingId}`)).statusCode, 204);
    assert.deepEqual((await alex.request('GET', '/v1/pairings')).json().pairings, []);
    assert.equal((await sam.request('DELETE', `/v1/pairings/${pairingId}`)).statusCode, 404);
  });

  test('the periodic purge removes codes an hour after they expired, and spent refresh tokens', async () => {
    const { code } = await newCode(alex);
    const status = () => t.ctx.services.pairing.codeStatus(alex.userId, code);
    clock.advance(600_000 + 30 * 60_000);
    assert.equal((await t.ctx.maintenance.runOnce()).codes, 0);
    assert.equal((await status()).status, 'expired');
    clock.advance(31 * 60_000);
    assert.equal((await t.ctx.maintenance.runOnce()).codes, 1);
    await assert.rejects(status(), { code: 'PAIRING_CODE_NOT_FOUND' });
    clock.advance(61 * 86_400_000);
    assert.equal((await t.ctx.maintenance.runOnce()).refreshTokens, 2);
  });

  test('redeeming is rate limited per user', async () => {
    await t.close();
    t = await startTestApp({ clock, env: { RATE_LIMIT_PAIRING_PER_MINUTE: '3' } });
    const guesser = await signUp(t);
    const codes = ['0000-0001', '0000-0002', '0000-0003', '0000-0004'];
    const statuses = [];
    for (const code of codes) statuses.push((await guesser.request('POST', '/v1/pairings', { code })).statusCode);
    assert.deepEqual(statuses, [404, 404, 404, 429]);
  });
});
