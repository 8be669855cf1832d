import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { afterEach, beforeEach, describe, test } from 'node:test';
import { startTestApp, type TestApp } from '../support/app.ts';
import { addDevice, pair, sendTap, signUp, type User } from '../support/clients.ts';
import { WsClient, type Frame } from '../support/ws-client.ts';

describe('real-time delivery between two couples of devices', () => {
  let t: TestApp;
  let alexPhone: User;
  let alexWatch: User;
  let samPhone: User;
  let samWatch: User;
  const sockets: WsClient[] = [];
  const connect = async (user: User) => {
    const ws = await WsClient.connect(t.wsUrl, user.accessToken);
    sockets.push(ws);
    return ws;
  };

  beforeEach(async () => {
    t = await startTestApp({ listen: true });
    alexPhone = await signUp(t, { displayName: 'Alex' });
    alexWatch = await addDevice(t, alexPhone, 'watchos');
    samPhone = await signUp(t, { displayName: 'Sam' });
    samWatch = await addDevice(t, samPhone, 'watchos');
    await pair(alexPhone, samPhone);
  });
  afterEach(async () => {
    for (const ws of sockets.splice(0)) ws.drop();
    await t.close();
  });

  test("hello tells who I am, my log's head and my partners' presence; sync.done follows", async () => {
    await sendTap(alexPhone, samPhone);
    const sam = await connect(samPhone);
    const hello = sam.frames[0]!;
    assert.equal(hello.type, 'hello');
    assert.equal(hello.userId, samPhone.userId);
    assert.equal(hello.deviceId, samPhone.deviceId);
    // Sam's log: the pairing, then the tap.
    assert.equal(hello.cursor, '2');
    assert.deepEqual(await sam.next('sync.done'), { type: 'sync.done', cursor: '2' });
    assert.deepEqual(hello.partners, [{ userId: alexPhone.userId, online: false }]);
    const alex = await connect(alexPhone);
    assert.deepEqual(alex.frames[0]!.partners, [{ userId: samPhone.userId, online: true }]);
  });

  test("a tap sent over HTTP reaches every live device of the partner, and the sender's other devices", async () => {
    const [samP, samW, alexW] = await Promise.all([connect(samPhone), connect(samWatch), connect(alexWatch)]);
    const tap = await sendTap(alexPhone, samPhone, { intensity: 'strong', pattern: 'heartbeat' });
    for (const ws of [samP, samW]) {
      const frame = await ws.next('tap', (f) => (f.tap as { id: string }).id === tap.id);
      assert.deepEqual(frame, { type: 'tap', cursor: '2', tap: { ...tap, cursor: '2' } });
    }
    // The sender's log numbers it in the sender's log.
    assert.deepEqual(await alexW.next('tap'), { type: 'tap', cursor: tap.cursor, tap });
  });

  test("a tap sent over the socket is answered with tap.sent, reaches the partner, and is an entry of the sender's log once", async () => {
    const [alexP, samP] = await Promise.all([connect(alexPhone), connect(samPhone)]);
    alexP.send({ type: 'tap.send', to: samPhone.userId, intensity: 'light', pattern: 'single', ref: 'r1' });
    const sent = await alexP.next('tap.sent');
    assert.equal(sent.ref, 'r1');
    assert.equal(sent.created, true);
    const tap = sent.tap as { id: string; from: string; cursor: string };
    assert.equal(tap.from, alexPhone.userId);
    assert.equal(((await samP.next('tap')).tap as { id: string }).id, tap.id);
    const entry = await alexP.next('tap');
    assert.deepEqual(entry, { type: 'tap', cursor: tap.cursor, tap: sent.tap });
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(alexP.of('tap').length, 1);
  });

  test("receipts reach every live device of the sender when the partner's device acks", async () => {
    const [alexP, alexW, samW] = await Promise.all([connect(alexPhone), connect(alexWatch), connect(samWatch)]);
    const tap = await sendTap(alexPhone, samPhone);
    await samW.next('tap');
    samW.send({ type: 'ack', tapId: tap.id, status: 'delivered', ref: 'got-it' });
    assert.deepEqual(await samW.next('ack.ok'), { type: 'ack.ok', tapId: tap.id, status: 'delivered', advanced: true, ref: 'got-it' });
    for (const ws of [alexP, alexW]) {
      const receipt = await ws.next('tap.status', (f) => f.tapId === tap.id && f.status === 'delivered');
      // The receipt is the entry after the tap in Alex's log.
      assert.equal(receipt.cursor, String(Number(tap.cursor) + 1));
    }
    samW.send({ type: 'ack', tapId: tap.id, status: 'seen' });
    await alexP.next('tap.status', (f) => f.status === 'seen');
    samW.send({ type: 'ack', tapId: tap.id, status: 'seen' });
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(alexP.of('tap.status').length, 2, 'a repeated ack sends no second receipt');
    const detail = (await alexPhone.request('GET', `/v1/taps/${tap.id}`)).json();
    const watchDelivery = detail.deliveries.find((d: { deviceId: string }) => d.deviceId === samWatch.deviceId);
    assert.equal(watchDelivery.channel, 'websocket');
    // Push is off in this app: nothing was ever due.
    assert.deepEqual([watchDelivery.push.state, watchDelivery.push.lastReason], ['skipped', 'PushDisabled']);
  });

  test('presence: a partner is online while any device is connected, offline when the last one leaves', async () => {
    const alexP = await connect(alexPhone);
    const samP = await connect(samPhone);
    await alexP.next('presence', (f) => f.userId === samPhone.userId && f.online === true);
    const samW = await connect(samWatch);
    await samP.close();
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(alexP.of('presence').filter((f) => f.online === false).length, 0, 'still online through the watch');
    samW.drop();
    await alexP.next('presence', (f) => f.userId === samPhone.userId && f.online === false);
    const pairings = (await alexPhone.request('GET', '/v1/pairings')).json();
    assert.equal(pairings.pairings[0].partner.online, false);
  });

  test('the same tap id resent over the socket and over HTTP is one tap', async () => {
    const samP = await connect(samPhone);
    const alexP = await connect(alexPhone);
    const id = randomUUID();
    const body = { id, to: samPhone.userId, intensity: 'medium' as const, pattern: 'triple' as const };
    alexP.send({ type: 'tap.send', ...body, ref: 'a' });
    alexP.send({ type: 'tap.send', ...body, ref: 'b' });
    const http = await alexPhone.request('POST', '/v1/taps', body);
    const [a, b] = [await alexP.next('tap.sent', (f) => f.ref === 'a'), await alexP.next('tap.sent', (f) => f.ref === 'b')];
    const created = [a.created, b.created, http.statusCode === 201].filter(Boolean);
    assert.equal(created.length, 1, 'exactly one of the three sends created the tap');
    await samP.next('tap');
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(samP.of('tap').length, 1);
    assert.equal((await samPhone.request('GET', '/v1/taps')).json().taps.length, 1);
  });

  test('unpairing and pairing are announced to both partners', async () => {
    const [alexP, samP] = await Promise.all([connect(alexPhone), connect(samPhone)]);
    const pairingId = (await alexPhone.request('GET', '/v1/pairings')).json().pairings[0].id;
    await samPhone.request('DELETE', `/v1/pairings/${pairingId}`);
    for (const [ws, partner] of [
      [alexP, samPhone],
      [samP, alexPhone],
    ] as const) {
      const frame = await ws.next('pairing.deleted');
      assert.deepEqual(frame, { type: 'pairing.deleted', cursor: '2', pairingId, partnerId: partner.userId, reason: 'unpaired' });
    }
    await pair(samPhone, alexPhone);
    const created = await alexP.next('pairing.created');
    assert.equal(created.cursor, '3');
    assert.equal((created.pairing as { partner: { userId: string; online: boolean } }).partner.userId, samPhone.userId);
    assert.equal((created.pairing as { partner: { online: boolean } }).partner.online, true);
  });

  test('browsers authenticate with a first message; a socket that never does is closed', async () => {
    const browser = await WsClient.connect(t.wsUrl);
    sockets.push(browser);
    browser.send({ type: 'ping' });
    const refused = await browser.next('error');
    assert.equal(refused.code, 'UNAUTHORIZED');
    browser.send({ type: 'auth', token: samPhone.accessToken, ref: 'hi' });
    const hello = await browser.next('hello');
    assert.equal(hello.deviceId, samPhone.deviceId);
    assert.equal(hello.ref, 'hi');
    const tap = await sendTap(alexPhone, samPhone);
    assert.equal(((await browser.next('tap')).tap as { id: string }).id, tap.id);

    const bad = await WsClient.connect(t.wsUrl);
    bad.send({ type: 'auth', token: 'garbage' });
    assert.equal((await bad.closed).code, 4401);
  });

  test('a bad Authorization header is refused at the upgrade with 401', async () => {
    await assert.rejects(WsClient.connect(t.wsUrl, 'not-a-token'), /upgrade refused: 401/);
  });

  test("logout and device removal close that device's sockets (4403); account deletion closes all (4410)", async () => {
    const [samP, samW, alexP] = await Promise.all([connect(samPhone), connect(samWatch), connect(alexPhone)]);
    await samWatch.request('POST', '/v1/auth/logout');
    assert.equal((await samW.closed).code, 4403);
    const watch2 = await addDevice(t, samPhone, 'watchos');
    const w2 = await connect(watch2);
    await samPhone.request('DELETE', `/v1/devices/${watch2.deviceId}`);
    const closed = await w2.closed;
    assert.equal(closed.code, 4403);
    assert.match(closed.reason, /removed/);
    assert.equal(samP.socket.readyState, samP.socket.OPEN);
    await samPhone.request('DELETE', '/v1/me');
    assert.equal((await samP.closed).code, 4410);
    assert.equal((await alexP.next('pairing.deleted')).reason, 'account_deleted');
  });

  test('a device may hold a limited number of sockets: the oldest is replaced (4409)', async () => {
    const first = await connect(samPhone);
    await connect(samPhone);
    await connect(samPhone);
    assert.equal((await first.closed).code, 4409);
    assert.equal(t.ctx.connections.connectionsOfDevice(samPhone.deviceId).length, 2);
  });
});

export type { Frame };
