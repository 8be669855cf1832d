import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { afterEach, describe, test } from 'node:test';
import { ManualClock, systemClock, type Clock } from '../../src/clock.ts';
import { PUSH_LEASE_MS } from '../../src/delivery/policy.ts';
import { startTestApp, type TestApp, type TestAppOptions } from '../support/app.ts';
import { addDevice, asUser, pair, sendTap, signUp, type User } from '../support/clients.ts';
import { FakeApns, createTestApnsKey } from '../support/fake-apns.ts';
import { WsClient } from '../support/ws-client.ts';

const BUNDLE_ID = 'app.navi.ios';
const deviceToken = () => randomBytes(32).toString('hex');

type Delivery = {
  deviceId: string;
  status: string;
  channel: string | null;
  push: { state: string; trigger: string; attempts: number; lastReason: string | null; apnsId: string | null };
};

describe('push delivery through APNs', () => {
  let t: TestApp | undefined;
  let fake: FakeApns | undefined;
  const sockets: WsClient[] = [];
  afterEach(async () => {
    for (const ws of sockets.splice(0)) ws.drop();
    await t?.close();
    await fake?.close();
    t = undefined;
    fake = undefined;
  });

  /** An app whose push channel talks to a fresh fake APNs; Alex and Sam are partners, Sam's watch has a push token. */
  async function setUp(options: { clock?: Clock; env?: Record<string, string>; app?: TestAppOptions } = {}) {
    const clock = options.clock ?? systemClock;
    const key = createTestApnsKey();
    fake = await FakeApns.start({ ...key, bundleId: BUNDLE_ID, clock });
    t = await startTestApp({
      clock,
      listen: true,
      env: {
        APNS_KEY: key.privateKeyPem,
        APNS_KEY_ID: key.keyId,
        APNS_TEAM_ID: key.teamId,
        APNS_BUNDLE_ID: BUNDLE_ID,
        APNS_ORIGIN: fake.origin,
        APNS_CA_PATH: fake.caPath,
        ...options.env,
      },
      ...options.app,
    });
    const alex = await signUp(t, { displayName: 'Alex' });
    const sam = await signUp(t, { displayName: 'Sam' });
    const samWatch = await addDevice(t, sam, 'watchos');
    await pair(alex, sam);
    const token = deviceToken();
    assert.equal(
      (await samWatch.request('PUT', '/v1/devices/current/push-token', { provider: 'apns', token, environment: 'sandbox' })).statusCode,
      204,
    );
    return { alex, sam, samWatch, token, key };
  }

  const deliveryTo = async (user: User, tapId: string, deviceId: string): Promise<Delivery> => {
    const detail = (await user.request('GET', `/v1/taps/${tapId}`)).json<{ deliveries: Delivery[] }>();
    return detail.deliveries.find((d) => d.deviceId === deviceId)!;
  };
  const settle = () => t!.ctx.push!.idle();

  test('an offline device is pushed at once, with the headers and payload APNs and the app expect', async () => {
    const { alex, samWatch, token } = await setUp();
    const tap = await sendTap(alex, samWatch, { intensity: 'strong', pattern: 'double' });
    await fake!.waitForRequests(1);
    await settle();
    const request = fake!.requests[0]!;
    assert.equal(request.deviceToken, token);
    // The watch app registered its own token: it is pushed under the watch app's topic.
    assert.equal(request.headers['apns-topic'], `${BUNDLE_ID}.watchkitapp`);
    assert.equal(request.headers['apns-push-type'], 'alert');
    assert.equal(request.headers['apns-priority'], '10');
    const createdAt = new Date((await alex.request('GET', `/v1/taps/${tap.id}`)).json().tap.createdAt).getTime();
    assert.equal(Number(request.headers['apns-expiration']), Math.floor((createdAt + 600_000) / 1000));
    assert.equal(request.headers['apns-collapse-id'], `tap-${tap.id}`);
    const payload = request.payload as { aps: Record<string, unknown>; navi: { tap: { id: string } } };
    assert.deepEqual(payload.aps.alert, { body: 'Alex sent you a strong double tap' });
    assert.equal(payload.aps['interruption-level'], 'time-sensitive');
    assert.equal(payload.aps.sound, 'default');
    assert.equal(payload.navi.tap.id, tap.id);
    assert.ok(Buffer.byteLength(request.body) < 4096);

    const delivery = await deliveryTo(alex, tap.id, samWatch.deviceId);
    assert.equal(delivery.push.state, 'sent');
    assert.equal(delivery.push.trigger, 'offline');
    assert.equal(delivery.push.attempts, 1);
    assert.equal(delivery.push.apnsId, request.headers['apns-id']);
    assert.equal(delivery.status, 'pending', 'APNs accepting it is not the device having it');
    const metrics = await t!.app.inject({ method: 'GET', url: '/metrics' });
    assert.match(metrics.body, /navi_push_attempts_total\{outcome="accepted",reason="none"\} 1/);
    assert.match(metrics.body, /navi_push_resolutions_total\{state="skipped",reason="NoPushToken"\} 1/);
    assert.match(metrics.body, /navi_apns_request_duration_seconds_count\{status="200"\} 1/);
  });

  test("each device is pushed under its own app's topic: the watch app's and the phone's, as APNs requires of their tokens", async () => {
    const { alex, sam, token: watchToken } = await setUp();
    const phoneToken = deviceToken();
    assert.equal(
      (await sam.request('PUT', '/v1/devices/current/push-token', { provider: 'apns', token: phoneToken, environment: 'sandbox' }))
        .statusCode,
      204,
    );
    // Like APNs, the fake accepts each token only under the topic of the app that registered it.
    fake!.registerToken(watchToken, `${BUNDLE_ID}.watchkitapp`);
    fake!.registerToken(phoneToken, BUNDLE_ID);
    // A receipt in Alex's log first, so that the two logs number the next tap differently.
    const first = await sendTap(alex, sam);
    assert.equal((await sam.request('POST', `/v1/taps/${first.id}/ack`, { status: 'seen' })).statusCode, 204);
    await fake!.waitForRequests(2);
    await settle();
    fake!.requests.splice(0);
    const tap = await sendTap(alex, sam);
    await fake!.waitForRequests(2);
    await settle();
    const topics = Object.fromEntries(fake!.requests.map((r) => [r.deviceToken, r.headers['apns-topic']]));
    assert.deepEqual(topics, { [watchToken]: `${BUNDLE_ID}.watchkitapp`, [phoneToken]: BUNDLE_ID });
    for (const request of fake!.requests) {
      assert.equal(request.headers['apns-push-type'], 'alert');
      assert.equal(request.headers['apns-priority'], '10');
    }
    const detail = (await alex.request('GET', `/v1/taps/${tap.id}`)).json<{ deliveries: Delivery[] }>();
    assert.deepEqual(
      detail.deliveries.map((d) => d.push.state),
      ['sent', 'sent'],
    );
    // The payload carries the recipient's cursor, not the sender's.
    const samsView = (await sam.request('GET', `/v1/taps/${tap.id}`)).json<{ tap: { cursor: string } }>().tap;
    const payload = fake!.requests[0]!.payload as { navi: { tap: { cursor: string } } };
    assert.equal(payload.navi.tap.cursor, samsView.cursor);
    assert.notEqual(samsView.cursor, tap.cursor);
  });

  test('the watch acks over HTTP after the push: delivered through push, and the sender gets the receipt live', async () => {
    const { alex, samWatch } = await setUp();
    const alexSocket = await WsClient.connect(t!.wsUrl, alex.accessToken);
    sockets.push(alexSocket);
    const tap = await sendTap(alex, samWatch);
    await fake!.waitForRequests(1);
    await settle();
    assert.equal((await samWatch.request('POST', `/v1/taps/${tap.id}/ack`, { status: 'seen' })).statusCode, 204);
    const receipt = await alexSocket.next('tap.status', (f) => f.tapId === tap.id);
    assert.equal(receipt.status, 'seen');
    const delivery = await deliveryTo(alex, tap.id, samWatch.deviceId);
    assert.equal(delivery.status, 'seen');
    assert.equal(delivery.channel, 'push');
  });

  test('410 Unregistered invalidates the token; later taps skip it; registering it again revives it', async () => {
    const { alex, sam, samWatch, token } = await setUp();
    fake!.unregister(token, Date.now() + 1000);
    const first = await sendTap(alex, sam);
    await fake!.waitForRequests(1);
    await settle();
    const failed = (await deliveryTo(alex, first.id, samWatch.deviceId)).push;
    assert.deepEqual([failed.state, failed.lastReason], ['failed', 'Unregistered']);
    const me = (await samWatch.request('GET', '/v1/me')).json<{ devices: Array<{ id: string; push: { valid: boolean } | null }> }>();
    assert.equal(me.devices.find((d) => d.id === samWatch.deviceId)!.push!.valid, false);

    const second = await sendTap(alex, sam);
    await settle();
    assert.equal(fake!.requests.length, 1, 'no request for a token known to be dead');
    const skipped = (await deliveryTo(alex, second.id, samWatch.deviceId)).push;
    assert.deepEqual([skipped.state, skipped.lastReason], ['skipped', 'TokenInvalid']);

    const fresh = deviceToken();
    await samWatch.request('PUT', '/v1/devices/current/push-token', { provider: 'apns', token: fresh, environment: 'sandbox' });
    const third = await sendTap(alex, sam);
    await fake!.waitForRequests(2);
    await settle();
    assert.equal(fake!.requests[1]!.deviceToken, fresh);
    assert.equal((await deliveryTo(alex, third.id, samWatch.deviceId)).push.state, 'sent');
    const metrics = await t!.app.inject({ method: 'GET', url: '/metrics' });
    assert.match(metrics.body, /navi_push_tokens_invalidated_total\{reason="Unregistered"\} 1/);
  });

  test("a token registered again after Apple's 410 timestamp stays valid", async () => {
    const { alex, sam, samWatch, token } = await setUp();
    fake!.unregister(token, Date.now() - 60_000);
    await sendTap(alex, sam);
    await fake!.waitForRequests(1);
    await settle();
    const me = (await samWatch.request('GET', '/v1/me')).json<{ devices: Array<{ id: string; push: { valid: boolean } | null }> }>();
    assert.equal(me.devices.find((d) => d.id === samWatch.deviceId)!.push!.valid, true);
  });

  test('BadDeviceToken (a sandbox/production mix-up) invalidates the token; a permanent refusal is not retried', async () => {
    const { alex, sam, samWatch } = await setUp();
    fake!.enqueue({ status: 400, reason: 'DeviceTokenNotForTopic' });
    const notForTopic = await sendTap(alex, sam);
    await fake!.waitForRequests(1);
    await settle();
    const d1 = await deliveryTo(alex, notForTopic.id, samWatch.deviceId);
    assert.deepEqual([d1.push.state, d1.push.lastReason, d1.push.attempts], ['failed', 'DeviceTokenNotForTopic', 1]);

    fake!.enqueue({ status: 400, reason: 'BadDeviceToken' });
    const bad = await sendTap(alex, sam);
    await fake!.waitForRequests(2);
    await settle();
    assert.equal((await deliveryTo(alex, bad.id, samWatch.deviceId)).push.lastReason, 'BadDeviceToken');
    const me = (await samWatch.request('GET', '/v1/me')).json<{ devices: Array<{ id: string; push: { valid: boolean } | null }> }>();
    assert.equal(me.devices.find((d) => d.id === samWatch.deviceId)!.push!.valid, false);
    assert.equal(fake!.requests.length, 2);
  });

  test('429 and 5xx are retried with growing delays until accepted', async () => {
    const clock = new ManualClock(Date.now());
    const { alex, sam, samWatch } = await setUp({ clock });
    fake!.enqueue({ status: 429, reason: 'TooManyRequests' }, { status: 503, reason: 'ServiceUnavailable' });
    const tap = await sendTap(alex, sam);
    await fake!.waitForRequests(1);
    await settle();
    let delivery = await deliveryTo(alex, tap.id, samWatch.deviceId);
    assert.deepEqual([delivery.push.state, delivery.push.attempts, delivery.push.lastReason], ['waiting', 1, 'TooManyRequests']);

    t!.ctx.push!.kick();
    await settle();
    assert.equal(fake!.requests.length, 1, 'not before its backoff');
    clock.advance(1_000);
    t!.ctx.push!.kick();
    await fake!.waitForRequests(2);
    await settle();
    delivery = await deliveryTo(alex, tap.id, samWatch.deviceId);
    assert.deepEqual([delivery.push.state, delivery.push.attempts, delivery.push.lastReason], ['waiting', 2, 'ServiceUnavailable']);
    // Delays are drawn from [half, full] of 1 s, 2 s, 4 s...: the second is at least 1 s.
    clock.advance(999);
    t!.ctx.push!.kick();
    await settle();
    assert.equal(fake!.requests.length, 2, 'the second delay is longer than the first');
    clock.advance(1_001);
    t!.ctx.push!.kick();
    await fake!.waitForRequests(3);
    await settle();
    delivery = await deliveryTo(alex, tap.id, samWatch.deviceId);
    assert.deepEqual([delivery.push.state, delivery.push.attempts], ['sent', 3]);
  });

  test('a push that keeps failing gives up when the tap is too old to buzz anyone', async () => {
    const clock = new ManualClock(Date.now());
    const { alex, sam, samWatch } = await setUp({ clock, env: { TAP_TTL_SECONDS: '10' } });
    fake!.respondWith(() => ({ status: 500, reason: 'InternalServerError' }));
    const tap = await sendTap(alex, sam);
    for (let i = 0; i < 6; i++) {
      await settle();
      clock.advance(2_000);
      t!.ctx.push!.kick();
    }
    await settle();
    const delivery = await deliveryTo(alex, tap.id, samWatch.deviceId);
    assert.equal(delivery.push.state, 'expired');
    assert.equal(delivery.push.lastReason, 'InternalServerError');
    assert.ok(delivery.push.attempts >= 2 && delivery.push.attempts <= 5, `attempts ${delivery.push.attempts}`);
  });

  test('GOAWAY in the middle of a push does not lose it', async () => {
    const { alex, sam, samWatch } = await setUp();
    fake!.enqueue('goaway');
    const tap = await sendTap(alex, sam);
    await fake!.waitFor(() => (fake!.requests.at(-1)?.response as { status?: number } | undefined)?.status === 200, 'an accepted push');
    await settle();
    assert.equal((await deliveryTo(alex, tap.id, samWatch.deviceId)).push.state, 'sent');
    assert.equal(fake!.connections, 2);
  });

  test('invalid provider credentials make the push channel report itself failing in /health', async () => {
    const { alex, sam } = await setUp();
    fake!.respondWith(() => ({ status: 403, reason: 'InvalidProviderToken' }));
    await sendTap(alex, sam);
    await fake!.waitForRequests(1);
    await settle();
    const health = (await t!.app.inject({ method: 'GET', url: '/health' })).json();
    assert.deepEqual([health.status, health.checks.push.status], ['degraded', 'degraded']);
  });

  test('a live socket that acks is never pushed; one that does not ack within the window is', async () => {
    // Long enough that a loaded machine still acks in time; the test waits it out once.
    const { alex, sam, samWatch } = await setUp({ env: { ACK_WINDOW_MS: '1500' } });
    const watchSocket = await WsClient.connect(t!.wsUrl, samWatch.accessToken);
    sockets.push(watchSocket);
    watchSocket.onFrame((frame) => {
      if (frame.type === 'tap' && (frame.tap as { pattern: string }).pattern === 'single') {
        watchSocket.send({ type: 'ack', tapId: (frame.tap as { id: string }).id, status: 'delivered' });
      }
    });
    const acked = await sendTap(alex, sam, { pattern: 'single' });
    const ignored = await sendTap(alex, sam, { pattern: 'long' });
    await fake!.waitForRequests(1, 5000);
    await new Promise((resolve) => setTimeout(resolve, 300));
    await settle();
    assert.deepEqual(
      fake!.requests.map((r) => (r.payload as { navi: { tap: { id: string } } }).navi.tap.id),
      [ignored.id],
    );
    const pushed = await deliveryTo(alex, ignored.id, samWatch.deviceId);
    assert.deepEqual([pushed.push.state, pushed.push.trigger], ['sent', 'no_ack']);
    const notPushed = await deliveryTo(alex, acked.id, samWatch.deviceId);
    assert.deepEqual([notPushed.status, notPushed.channel, notPushed.push.state], ['delivered', 'websocket', 'not_needed']);
  });

  test('a device signed out before its ack window ends is not pushed', async () => {
    const { alex, sam, samWatch } = await setUp({ env: { ACK_WINDOW_MS: '300' } });
    const watchSocket = await WsClient.connect(t!.wsUrl, samWatch.accessToken);
    sockets.push(watchSocket);
    const tap = await sendTap(alex, sam);
    await watchSocket.next('tap');
    assert.equal((await samWatch.request('POST', '/v1/auth/logout')).statusCode, 204);
    await new Promise((resolve) => setTimeout(resolve, 500));
    t!.ctx.push!.kick();
    await settle();
    assert.equal(fake!.requests.length, 0);
    const detail = (await alex.request('GET', `/v1/taps/${tap.id}`)).json<{ deliveries: Delivery[] }>();
    assert.deepEqual(
      detail.deliveries.map((d) => d.deviceId),
      [sam.deviceId],
      'the removed device is no longer listed',
    );
  });

  test('a tap accepted just before a crash is pushed after the restart', async () => {
    const clock = new ManualClock(Date.now());
    const { alex, sam, samWatch, key } = await setUp({ clock });
    // The process dies after committing the tap (and claiming its push) and before the push goes out.
    await t!.ctx.push!.stop();
    const tap = await sendTap(alex, sam);
    const { database, config } = t!;
    await t!.close({ keepDatabase: true });
    assert.equal(fake!.requests.length, 0);

    t = await startTestApp({
      clock,
      listen: true,
      database,
      jwtSecret: config.auth.jwtSecret,
      env: {
        APNS_KEY: key.privateKeyPem,
        APNS_KEY_ID: key.keyId,
        APNS_TEAM_ID: key.teamId,
        APNS_BUNDLE_ID: BUNDLE_ID,
        APNS_ORIGIN: fake!.origin,
        APNS_CA_PATH: fake!.caPath,
      },
    });
    // SQLite: this process owns the file and takes the dead claim back at start.
    // PostgreSQL: another instance may hold it, so it waits for the claim's lease.
    clock.advance(PUSH_LEASE_MS);
    t.ctx.push!.kick();
    await fake!.waitForRequests(1);
    await settle();
    assert.equal((fake!.requests[0]!.payload as { navi: { tap: { id: string } } }).navi.tap.id, tap.id);
    assert.equal((await deliveryTo(asUser(t, alex), tap.id, samWatch.deviceId)).push.state, 'sent');
  });

  test('without APNs configuration there is no push channel: deliveries are settled as skipped at once, health has no push check', async () => {
    t = await startTestApp({ listen: true });
    assert.equal(t.ctx.push, undefined);
    const alex = await signUp(t);
    const sam = await signUp(t);
    const samWatch = await addDevice(t, sam, 'watchos');
    await pair(alex, sam);
    const ws = await WsClient.connect(t.wsUrl, samWatch.accessToken);
    sockets.push(ws);
    const tap = await sendTap(alex, sam);
    const offline = await deliveryTo(alex, tap.id, sam.deviceId);
    assert.deepEqual([offline.push.state, offline.push.lastReason, offline.push.trigger], ['skipped', 'PushDisabled', 'offline']);
    // A live socket has nothing to fall back on either: no ack window is kept open.
    const live = await deliveryTo(alex, tap.id, samWatch.deviceId);
    assert.deepEqual([live.push.state, live.push.lastReason, live.push.trigger], ['skipped', 'PushDisabled', 'no_ack']);
    assert.equal((await t.app.inject({ method: 'GET', url: '/health' })).json().checks.push, undefined);
  });

  test('pushes left outstanding when push was on are settled when the service starts with push off', async () => {
    const { alex, samWatch } = await setUp();
    const ws = await WsClient.connect(t!.wsUrl, samWatch.accessToken);
    const tap = await sendTap(alex, samWatch);
    assert.equal((await deliveryTo(alex, tap.id, samWatch.deviceId)).push.state, 'waiting');
    ws.drop();
    const { database, config } = t!;
    await t!.close({ keepDatabase: true });
    t = await startTestApp({ database, jwtSecret: config.auth.jwtSecret });
    const settled = await deliveryTo(asUser(t, alex), tap.id, samWatch.deviceId);
    assert.deepEqual([settled.push.state, settled.push.lastReason], ['skipped', 'PushDisabled']);
  });
});
