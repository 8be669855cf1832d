import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { createServer, type AddressInfo } from 'node:net';
import { test, type TestContext } from 'node:test';
import { ManualClock } from '../../src/clock.ts';
import type { ApnsConfig } from '../../src/config.ts';
import { createLogger } from '../../src/logger.ts';
import { createMetrics } from '../../src/metrics.ts';
import { ApnsClient, type ApnsClientOptions } from '../../src/push/apns/client.ts';
import type { PushNotification } from '../../src/push/sender.ts';
import { FakeApns, createTestApnsKey } from '../support/fake-apns.ts';

type Tuning = Pick<ApnsClientOptions, 'pingIntervalMs' | 'pingTimeoutMs' | 'closeGraceMs'>;

async function setup(t: TestContext, config: Partial<ApnsConfig> = {}, tuning: Tuning = {}) {
  const clock = new ManualClock();
  const key = createTestApnsKey();
  const fake = await FakeApns.start({ ...key, bundleId: 'app.navi.ios', clock });
  const logs: Array<Record<string, unknown> & { level: number; msg: string }> = [];
  const logger = createLogger({ logLevel: 'debug' }, { write: (line: string) => void logs.push(JSON.parse(line)) });
  const client = new ApnsClient({
    config: fake.clientConfig({ key: { pem: key.privateKeyPem }, ...config }),
    clock,
    logger,
    metrics: createMetrics(),
    ...tuning,
  });
  t.after(async () => {
    await client.close();
    await fake.close();
  });
  const notification = (): PushNotification => ({
    deviceToken: randomUUID().replace(/-/g, '').repeat(2),
    environment: 'production',
    platform: 'ios',
    apnsId: randomUUID(),
    expiresAt: clock.now() + 600_000,
    payload: '{"aps":{"alert":{"body":"tap"}}}',
  });
  return { fake, client, logs, notification };
}

test('GOAWAY before APNs processed the stream: the push is resent on a new connection and accepted', async (t) => {
  const { fake, client, notification } = await setup(t);
  assert.equal((await client.send(notification())).kind, 'accepted');
  fake.enqueue('goaway');

  const sent = notification();
  assert.deepEqual(await client.send(sent), { kind: 'accepted', apnsId: sent.apnsId });

  const [, refused, resent] = fake.requests;
  assert.equal(refused?.response, 'goaway');
  assert.equal(resent?.headers['apns-id'], sent.apnsId);
  assert.deepEqual([refused?.connection, resent?.connection], [1, 2]);
  // Later pushes stay on the new connection.
  assert.equal((await client.send(notification())).kind, 'accepted');
  assert.equal(fake.connections, 2);
});

test('GOAWAY on the resend too: the send is retry, and the next send works', async (t) => {
  const { fake, client, notification } = await setup(t);
  fake.enqueue('goaway', 'goaway');
  assert.deepEqual(await client.send(notification()), { kind: 'retry', reason: 'GoAway' });
  assert.equal(fake.requests.length, 2, 'resent exactly once');
  assert.equal((await client.send(notification())).kind, 'accepted');
});

test('a GOAWAY mid-stream does not lose pushes that were in flight beside it', async (t) => {
  const { fake, client, notification } = await setup(t);
  let held = 0;
  let release = () => {};
  const gate = new Promise<void>((resolve) => (release = resolve));
  fake.respondWith(async () => {
    held += 1;
    if (held === 3) return 'goaway';
    await gate;
    return undefined;
  });
  const sends = [notification(), notification(), notification()].map((n) => client.send(n));
  await fake.waitForRequests(3);
  release();
  const outcomes = await Promise.all(sends);
  assert.deepEqual(
    outcomes.map((outcome) => outcome.kind),
    ['accepted', 'accepted', 'accepted'],
  );
});

test('a stream APNs never answers is cancelled after the timeout, and the connection stays usable', async (t) => {
  const { fake, client, notification } = await setup(t, { timeoutMs: 300 });
  fake.enqueue('hang');
  const started = performance.now();
  assert.deepEqual(await client.send(notification()), { kind: 'retry', reason: 'Timeout' });
  assert.ok(performance.now() - started >= 290, 'waited for the timeout');
  await fake.waitFor(() => fake.requests[0]?.clientResetCode !== undefined, 'the stream reset');
  assert.equal(fake.requests[0]?.clientResetCode, 8, 'RST_STREAM CANCEL');

  assert.equal((await client.send(notification())).kind, 'accepted');
  assert.equal(fake.connections, 1);
});

test('a stream reset by APNs is retry', async (t) => {
  const { fake, client, notification } = await setup(t);
  fake.enqueue('reset');
  assert.deepEqual(await client.send(notification()), { kind: 'retry', reason: 'StreamReset' });
  assert.equal((await client.send(notification())).kind, 'accepted');
});

test('no more than `concurrency` streams are open at once; the rest wait their turn in order', async (t) => {
  const { fake, client, notification } = await setup(t, { concurrency: 2 });
  const gates: Array<() => void> = [];
  fake.respondWith(() => new Promise((resolve) => gates.push(() => resolve(undefined))));
  const sent = Array.from({ length: 6 }, notification);
  const sends = sent.map((n) => client.send(n));

  for (let answered = 0; answered < sent.length; answered += 1) {
    // Hold until two are waiting for an answer (when two are left), so any third would show.
    const arrived = Math.min(answered + 2, sent.length);
    await fake.waitFor(() => gates.length >= arrived, `${arrived} requests`);
    assert.ok(fake.inFlight <= 2, `${fake.inFlight} streams open at once`);
    gates[answered]?.();
  }
  const outcomes = await Promise.all(sends);
  assert.ok(outcomes.every((outcome) => outcome.kind === 'accepted'));
  assert.equal(fake.peakInFlight, 2);
  assert.deepEqual(
    fake.requests.map((request) => request.headers['apns-id']),
    sent.map((n) => n.apnsId),
  );
});

test('without the CA file the self-signed server is not trusted: TLS failure, retry, logged as an error', async (t) => {
  const { client, logs, notification } = await setup(t, { caPath: undefined });
  assert.deepEqual(await client.send(notification()), { kind: 'retry', reason: 'TlsError' });
  assert.ok(logs.some((line) => line.level === 50 && /TLS/.test(line.msg)));
});

test('a refused connection is retry, and the next send connects again', async (t) => {
  const closed = createServer();
  await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
  const port = (closed.address() as AddressInfo).port;
  await new Promise<void>((resolve) => closed.close(() => resolve()));
  const { client, notification } = await setup(t, { origin: `https://127.0.0.1:${port}` });
  assert.deepEqual(await client.send(notification()), { kind: 'retry', reason: 'ConnectionError' });
  assert.deepEqual(await client.send(notification()), { kind: 'retry', reason: 'ConnectionError' });
});

test('an idle connection is kept alive with pings', async (t) => {
  const { fake, client, notification } = await setup(t, {}, { pingIntervalMs: 20 });
  await client.send(notification());
  await fake.waitFor(() => fake.pings >= 2, 'two pings');
  assert.equal(fake.connections, 1);
});

test('a connection that stops answering pings is dropped, and the next push goes on a new one', async (t) => {
  const { fake, client, logs, notification } = await setup(t, { timeoutMs: 2_000 }, { pingIntervalMs: 20, pingTimeoutMs: 100 });
  await client.send(notification());
  fake.blackhole();
  await fake.waitFor(() => logs.some((line) => /did not answer a ping/.test(line.msg)), 'the ping timeout', 3_000);
  assert.equal((await client.send(notification())).kind, 'accepted');
  assert.equal(fake.connections, 2);
});

test('close() does not wait on a stream that will never be answered; queued and later sends are retry', async (t) => {
  const { fake, client, notification } = await setup(t, { concurrency: 1, timeoutMs: 60_000 }, { closeGraceMs: 100 });
  fake.enqueue('hang');
  const inFlight = client.send(notification());
  const queued = client.send(notification());
  await fake.waitForRequests(1);

  const started = performance.now();
  await client.close();
  assert.ok(performance.now() - started < 2_000, 'close returned promptly');
  assert.deepEqual(await inFlight, { kind: 'retry', reason: 'Closing' });
  assert.deepEqual(await queued, { kind: 'retry', reason: 'Closing' });
  assert.deepEqual(await client.send(notification()), { kind: 'retry', reason: 'Closing' });
  assert.equal(fake.requests.length, 1);
});

test('close() lets a request in flight finish when it is answered within the grace period', async (t) => {
  const { fake, client, notification } = await setup(t, {}, { closeGraceMs: 5_000 });
  let release = () => {};
  fake.respondWith(() => new Promise((resolve) => (release = () => resolve(undefined))));
  const inFlight = client.send(notification());
  await fake.waitForRequests(1);
  const closing = client.close();
  release();
  await closing;
  assert.equal((await inFlight).kind, 'accepted');
});
