import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { test, type TestContext } from 'node:test';
import { ManualClock } from '../../src/clock.ts';
import type { ApnsConfig } from '../../src/config.ts';
import { createLogger } from '../../src/logger.ts';
import { createMetrics } from '../../src/metrics.ts';
import { ApnsClient } from '../../src/push/apns/client.ts';
import type { PushNotification } from '../../src/push/sender.ts';
import { FakeApns, createTestApnsKey } from '../support/fake-apns.ts';

const MINUTE = 60_000;
const BUNDLE_ID = 'app.navi.ios';
const DEVICE = `a1b2c3d4${'e5f6'.repeat(14)}`;

async function setup(t: TestContext, config: Partial<ApnsConfig> = {}) {
  const clock = new ManualClock();
  const key = createTestApnsKey();
  const fake = await FakeApns.start({ ...key, bundleId: BUNDLE_ID, clock });
  const logs: Array<Record<string, unknown> & { level: number; msg: string }> = [];
  const rawLogs: string[] = [];
  const logger = createLogger({ logLevel: 'debug' }, { write: (line: string) => void (rawLogs.push(line), logs.push(JSON.parse(line))) });
  const metrics = createMetrics();
  const client = new ApnsClient({ config: fake.clientConfig({ key: { pem: key.privateKeyPem }, ...config }), clock, logger, metrics });
  t.after(async () => {
    await client.close();
    await fake.close();
  });
  const notification = (overrides: Partial<PushNotification> = {}): PushNotification => ({
    deviceToken: DEVICE,
    environment: 'sandbox',
    platform: 'ios',
    apnsId: randomUUID(),
    expiresAt: clock.now() + 10 * MINUTE + 999,
    payload: JSON.stringify({ aps: { alert: { body: 'Sam sent you a tap' } } }),
    ...overrides,
  });
  return { clock, key, fake, client, logs, rawLogs, metrics, notification };
}

test('a push is sent with the headers APNs requires and the payload as given, and accepted', async (t) => {
  const { fake, client, clock, key, notification } = await setup(t);
  const sent = notification({ collapseId: 'tap-42' });

  assert.deepEqual(await client.send(sent), { kind: 'accepted', apnsId: sent.apnsId });

  const [received] = fake.requests;
  assert.ok(received);
  assert.equal(received.path, `/3/device/${DEVICE}`);
  assert.equal(received.method, 'POST');
  assert.equal(received.body, sent.payload);
  assert.deepEqual(received.payload, JSON.parse(sent.payload));
  const { authorization, ...headers } = received.headers;
  assert.match(authorization ?? '', /^bearer [\w-]+\.[\w-]+\.[\w-]+$/);
  assert.deepEqual(headers, {
    'apns-topic': BUNDLE_ID,
    'apns-push-type': 'alert',
    'apns-priority': '10',
    'apns-expiration': String(Math.floor(sent.expiresAt / 1000)),
    'apns-id': sent.apnsId,
    'apns-collapse-id': 'tap-42',
    'content-type': 'application/json',
  });
  assert.deepEqual(received.jwt?.header, { alg: 'ES256', kid: key.keyId });
  assert.deepEqual(received.jwt?.claims, { iss: key.teamId, iat: Math.floor(clock.now() / 1000) });
  assert.deepEqual(received.response, { status: 200, apnsId: sent.apnsId });
});

test("a watchOS device is pushed under the watch app's topic, an iOS device under the phone app's, both as immediate alerts", async (t) => {
  const { fake, client, notification } = await setup(t);
  const watchToken = 'ab'.repeat(32);
  fake.registerToken(DEVICE, BUNDLE_ID);
  fake.registerToken(watchToken, `${BUNDLE_ID}.watchkitapp`);

  assert.equal((await client.send(notification({ platform: 'ios' }))).kind, 'accepted');
  assert.equal((await client.send(notification({ platform: 'watchos', deviceToken: watchToken }))).kind, 'accepted');

  const sent = fake.requests.map((request) => ({
    token: request.deviceToken,
    topic: request.headers['apns-topic'],
    type: request.headers['apns-push-type'],
    priority: request.headers['apns-priority'],
  }));
  assert.deepEqual(sent, [
    { token: DEVICE, topic: BUNDLE_ID, type: 'alert', priority: '10' },
    { token: watchToken, topic: `${BUNDLE_ID}.watchkitapp`, type: 'alert', priority: '10' },
  ]);
});

test('the watch topic can be set on its own (APNS_WATCH_BUNDLE_ID)', async (t) => {
  const clock = new ManualClock();
  const key = createTestApnsKey();
  const fake = await FakeApns.start({ ...key, bundleId: BUNDLE_ID, watchBundleId: 'app.navi.watch', clock });
  const client = new ApnsClient({
    config: fake.clientConfig({ key: { pem: key.privateKeyPem }, watchBundleId: 'app.navi.watch' }),
    clock,
    logger: createLogger({ logLevel: 'silent' }),
    metrics: createMetrics(),
  });
  t.after(async () => {
    await client.close();
    await fake.close();
  });
  fake.registerToken(DEVICE, 'app.navi.watch');
  const outcome = await client.send({
    deviceToken: DEVICE,
    environment: 'sandbox',
    platform: 'watchos',
    apnsId: randomUUID(),
    expiresAt: clock.now() + MINUTE,
    payload: '{"aps":{"alert":{"body":"tap"}}}',
  });
  assert.equal(outcome.kind, 'accepted');
  assert.equal(fake.requests[0]?.headers['apns-topic'], 'app.navi.watch');
});

test("a token pushed under the other app's topic is DeviceTokenNotForTopic, a permanent failure, as APNs answers it", async (t) => {
  const { fake, client, notification } = await setup(t);
  const watchToken = 'cd'.repeat(32);
  fake.registerToken(DEVICE, BUNDLE_ID);
  fake.registerToken(watchToken, `${BUNDLE_ID}.watchkitapp`);
  // The bug of issue 12: a watch's token sent under the phone's topic, and the reverse.
  assert.deepEqual(await client.send(notification({ platform: 'ios', deviceToken: watchToken })), {
    kind: 'permanent',
    status: 400,
    reason: 'DeviceTokenNotForTopic',
  });
  assert.deepEqual(await client.send(notification({ platform: 'watchos', deviceToken: DEVICE })), {
    kind: 'permanent',
    status: 400,
    reason: 'DeviceTokenNotForTopic',
  });
});

test('apns-collapse-id is left out when the notification has none', async (t) => {
  const { fake, client, notification } = await setup(t);
  assert.equal((await client.send(notification())).kind, 'accepted');
  assert.equal(fake.requests[0]?.headers['apns-collapse-id'], undefined);
});

test('each environment has its own connection, unless one environment is forced', async (t) => {
  const separate = await setup(t);
  await separate.client.send(separate.notification({ environment: 'sandbox' }));
  await separate.client.send(separate.notification({ environment: 'production' }));
  await separate.client.send(separate.notification({ environment: 'sandbox' }));
  assert.equal(separate.fake.connections, 2);

  const forced = await setup(t, { forcedEnvironment: 'production' });
  await forced.client.send(forced.notification({ environment: 'sandbox' }));
  await forced.client.send(forced.notification({ environment: 'production' }));
  assert.equal(forced.fake.connections, 1);
});

test('a payload over 4096 bytes is refused without a request', async (t) => {
  const { fake, client, notification } = await setup(t);
  // 4095 ASCII bytes plus a two-byte character: the limit is in bytes, not characters.
  const payload = JSON.stringify({ a: 'x'.repeat(4095 - 8) + 'é' });
  assert.equal(Buffer.byteLength(payload), 4097);
  assert.deepEqual(await client.send(notification({ payload })), { kind: 'permanent', status: 413, reason: 'PayloadTooLarge' });
  assert.equal(fake.requests.length, 0);
});

test('an unregistered token is invalid, with the time Apple learned it', async (t) => {
  const { fake, client, clock, notification } = await setup(t);
  const since = clock.now() - 3 * 86_400_000;
  fake.unregister(DEVICE, since);
  assert.deepEqual(await client.send(notification()), { kind: 'invalid-token', status: 410, reason: 'Unregistered', timestamp: since });
  fake.enqueue({ status: 410, reason: 'ExpiredToken' });
  assert.deepEqual(await client.send(notification({ deviceToken: 'ab'.repeat(32) })), {
    kind: 'invalid-token',
    status: 410,
    reason: 'ExpiredToken',
  });
});

test('BadDeviceToken invalidates the token and warns of a sandbox/production mix-up, without logging the token', async (t) => {
  const { client, logs, rawLogs, notification } = await setup(t);
  const deviceToken = `${'0123abcd'.repeat(7)}notahex!`;
  assert.deepEqual(await client.send(notification({ deviceToken, environment: 'production' })), {
    kind: 'invalid-token',
    status: 400,
    reason: 'BadDeviceToken',
  });
  const warning = logs.find((line) => line.level === 40 && /BadDeviceToken/.test(line.msg));
  assert.ok(warning, 'a warning was logged');
  assert.match(warning.msg, /sandbox token sent to production/);
  assert.equal(warning.environment, 'production');
  assert.equal(warning.tokenPrefix, '0123abcd');
  assert.ok(!rawLogs.some((line) => line.includes(deviceToken.slice(0, 16))), 'no more than 8 characters of the token are logged');
});

test('requests APNs will never accept as sent are permanent failures', async (t) => {
  const { fake, client, notification } = await setup(t);
  const cases = [
    [400, 'DeviceTokenNotForTopic'],
    [400, 'BadCollapseId'],
    [400, 'BadExpirationDate'],
    [403, 'Forbidden'],
    [404, 'BadPath'],
    [413, 'PayloadTooLarge'],
  ] as const;
  for (const [status, reason] of cases) {
    fake.enqueue({ status, reason });
    assert.deepEqual(await client.send(notification()), { kind: 'permanent', status, reason });
  }
});

test("the fake's own checks come back as APNs's answers: a topic other than the bundle id is disallowed", async (t) => {
  const { client, notification } = await setup(t, { bundleId: 'app.someone.else' });
  assert.deepEqual(await client.send(notification()), { kind: 'permanent', status: 400, reason: 'TopicDisallowed' });
});

test('throttling, server errors and idle timeouts are worth retrying', async (t) => {
  const { fake, client, notification } = await setup(t);
  const cases = [
    [429, 'TooManyRequests'],
    [500, 'InternalServerError'],
    [503, 'ServiceUnavailable'],
    [503, 'Shutdown'],
    [400, 'IdleTimeout'],
    [502, 'BadGateway'],
  ] as const;
  for (const [status, reason] of cases) {
    fake.enqueue({ status, reason });
    assert.deepEqual(await client.send(notification()), { kind: 'retry', status, reason });
  }
});

test('ExpiredProviderToken on a token over 20 minutes old renews it and retries once, within the same send', async (t) => {
  const { fake, client, clock, notification } = await setup(t);
  assert.equal((await client.send(notification())).kind, 'accepted');
  clock.advance(30 * MINUTE);
  fake.enqueue({ status: 403, reason: 'ExpiredProviderToken' });

  const sent = notification();
  assert.deepEqual(await client.send(sent), { kind: 'accepted', apnsId: sent.apnsId });

  const [first, rejected, retried] = fake.requests;
  assert.equal(fake.requests.length, 3);
  assert.equal(rejected?.headers['apns-id'], sent.apnsId);
  assert.equal(retried?.headers['apns-id'], sent.apnsId);
  assert.equal(rejected?.jwt?.raw, first?.jwt?.raw);
  assert.notEqual(retried?.jwt?.raw, rejected?.jwt?.raw);
  assert.equal(retried?.jwt?.claims.iat, Math.floor(clock.now() / 1000));
});

test('ExpiredProviderToken on a token under 20 minutes old does not renew it (clock trouble) and reports misconfigured', async (t) => {
  const { fake, client, clock, logs, notification } = await setup(t);
  await client.send(notification());
  clock.advance(5 * MINUTE);
  fake.enqueue({ status: 403, reason: 'ExpiredProviderToken' });

  assert.deepEqual(await client.send(notification()), { kind: 'misconfigured', status: 403, reason: 'ExpiredProviderToken' });
  assert.equal(fake.requests.length, 2, 'no second request with the same token');
  assert.ok(logs.some((line) => line.level === 50 && /system clock/.test(line.msg)));

  assert.equal((await client.send(notification())).kind, 'accepted');
  assert.equal(new Set(fake.requests.map((request) => request.jwt?.raw)).size, 1, 'the token was never replaced');
});

test('ExpiredProviderToken again after the renewal is misconfigured, with no further attempt', async (t) => {
  const { fake, client, clock, notification } = await setup(t);
  await client.send(notification());
  clock.advance(40 * MINUTE);
  fake.enqueue({ status: 403, reason: 'ExpiredProviderToken' }, { status: 403, reason: 'ExpiredProviderToken' });
  assert.deepEqual(await client.send(notification()), { kind: 'misconfigured', status: 403, reason: 'ExpiredProviderToken' });
  assert.equal(fake.requests.length, 3);
  assert.equal(client.health().state, 'failing');
});

test('a token APNs cannot verify is misconfigured: health fails, loudly, until a push is accepted again', async (t) => {
  const { fake, client, logs, rawLogs, notification } = await setup(t);
  assert.deepEqual(client.health(), { state: 'ok' });
  fake.enqueue({ status: 403, reason: 'InvalidProviderToken' });

  assert.deepEqual(await client.send(notification()), { kind: 'misconfigured', status: 403, reason: 'InvalidProviderToken' });
  assert.deepEqual(client.health(), { state: 'failing', reason: 'InvalidProviderToken' });
  assert.ok(logs.some((line) => line.level === 50 && line.reason === 'InvalidProviderToken'));
  const jwt = fake.requests[0]?.jwt?.raw ?? '';
  assert.ok(jwt.length > 0 && !rawLogs.some((line) => line.includes(jwt.split('.')[2] ?? jwt)), 'the token is never logged');

  assert.equal((await client.send(notification())).kind, 'accepted');
  assert.deepEqual(client.health(), { state: 'ok' });
});

test('a client signing with the wrong key is told InvalidProviderToken by the fake', async (t) => {
  const { client, notification } = await setup(t, { key: { pem: createTestApnsKey().privateKeyPem } });
  assert.deepEqual(await client.send(notification()), { kind: 'misconfigured', status: 403, reason: 'InvalidProviderToken' });
  assert.equal(client.health().state, 'failing');
});

test('a wrong key id or team id is InvalidProviderToken too', async (t) => {
  const wrongKid = await setup(t, { keyId: 'OTHERKEY00' });
  assert.equal((await wrongKid.client.send(wrongKid.notification())).kind, 'misconfigured');
  const wrongTeam = await setup(t, { teamId: 'OTHERTEAM0' });
  assert.deepEqual(await wrongTeam.client.send(wrongTeam.notification()), {
    kind: 'misconfigured',
    status: 403,
    reason: 'InvalidProviderToken',
  });
});

test('MissingProviderToken, with either status, is misconfigured', async (t) => {
  const { fake, client, notification } = await setup(t);
  fake.enqueue({ status: 403, reason: 'MissingProviderToken' }, { status: 400, reason: 'MissingProviderToken' });
  assert.deepEqual(await client.send(notification()), { kind: 'misconfigured', status: 403, reason: 'MissingProviderToken' });
  assert.deepEqual(await client.send(notification()), { kind: 'misconfigured', status: 400, reason: 'MissingProviderToken' });
});

test('the client keeps its token for 50 minutes, so APNs never sees it expire nor change too often', async (t) => {
  const { fake, client, clock, notification } = await setup(t);
  for (let minute = 0; minute <= 180; minute += 10) {
    assert.equal((await client.send(notification())).kind, 'accepted', `at minute ${minute}`);
    clock.advance(10 * MINUTE);
  }
  assert.ok(fake.requests.every((request) => typeof request.response === 'object' && request.response.status === 200));
  assert.equal(new Set(fake.requests.map((request) => request.jwt?.raw)).size, 4, 'renewed at 50, 100 and 150 minutes');
});

test('every request is timed in the latency histogram under its status', async (t) => {
  const { fake, client, metrics, notification } = await setup(t);
  fake.enqueue({ status: 503, reason: 'ServiceUnavailable' });
  await client.send(notification());
  await client.send(notification());
  await client.send(notification());
  const counts = new Map(
    (await metrics.apnsLatency.get()).values
      .filter((value) => value.metricName === 'navi_apns_request_duration_seconds_count')
      .map((value) => [value.labels.status, value.value]),
  );
  assert.equal(counts.get('200'), 2);
  assert.equal(counts.get('503'), 1);
});
