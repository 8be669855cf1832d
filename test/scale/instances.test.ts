import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Cluster } from '../support/cluster.ts';
import { WsClient, type Frame } from '../support/ws-client.ts';
import { SHARED_REDIS_URL } from '../support/redis-server.ts';
import { ServerProcess } from '../support/server-process.ts';

/**
 * Several real service processes on one PostgreSQL database and one Redis,
 * as docs/scaling.md describes the deployment: what a user of each instance
 * sees must be what one instance gives.
 */
const postgres = (process.env.DATABASE_URL ?? '').startsWith('postgres');
const skip = postgres ? false : 'several instances run on PostgreSQL: see the PostgreSQL pass of the suite';

type Session = { userId: string; deviceId: string; accessToken: string; refreshToken: string };

async function call(url: string, method: string, path: string, token?: string, body?: unknown) {
  const response = await fetch(`${url}${path}`, {
    method,
    headers: {
      ...(token ? { authorization: `Bearer ${token}` } : {}),
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  return { status: response.status, body: (text ? JSON.parse(text) : undefined) as any };
}

async function register(url: string, platform = 'ios'): Promise<Session> {
  const response = await call(url, 'POST', '/v1/auth/register', undefined, { platform });
  assert.equal(response.status, 201);
  return response.body;
}

async function addDevice(url: string, user: Session, platform = 'watchos'): Promise<Session> {
  const response = await call(url, 'POST', '/v1/devices', user.accessToken, { platform });
  assert.equal(response.status, 201);
  return response.body;
}

async function pair(url: string, a: Session, b: Session): Promise<void> {
  const code = (await call(url, 'POST', '/v1/pairing-codes', a.accessToken)).body.code;
  assert.equal((await call(url, 'POST', '/v1/pairings', b.accessToken, { code })).status, 201);
}

const tapFrame = (id: string) => (f: Frame) => (f.tap as { id: string }).id === id;

describe('several instances behave as one', { skip }, () => {
  let cluster: Cluster;
  const sockets: WsClient[] = [];
  const connect = async (i: number, user: Session) => {
    const ws = await WsClient.connect(cluster.wsUrl(i), user.accessToken);
    sockets.push(ws);
    return ws;
  };
  before(async () => {
    cluster = await Cluster.start({ instances: 2 });
  });
  after(async () => {
    for (const ws of sockets) ws.drop();
    await cluster?.close();
  });

  test('a tap sent through A reaches the partner on B live; the receipt, presence and pairing come back to A', async () => {
    const [a, b] = [cluster.url(0), cluster.url(1)];
    const alex = await register(a);
    const sam = await register(b);
    const alexOnA = await connect(0, alex);
    const samOnB = await connect(1, sam);
    await pair(a, alex, sam);
    // The pairing, made through A, reaches Sam on B as the first entry of his log.
    assert.equal((await samOnB.next('pairing.created', () => true, 5000)).cursor, '1');
    await alexOnA.next('pairing.created');

    const sent = await call(a, 'POST', '/v1/taps', alex.accessToken, { to: sam.userId, intensity: 'strong', pattern: 'heartbeat' });
    assert.equal(sent.status, 201);
    const live = await samOnB.next('tap', tapFrame(sent.body.tap.id), 5000);
    assert.equal(live.cursor, '2');
    samOnB.send({ type: 'ack', tapId: sent.body.tap.id, status: 'seen', ref: 'felt' });
    await samOnB.next('ack.ok', (f) => f.ref === 'felt');
    const receipt = await alexOnA.next('tap.status', (f) => f.tapId === sent.body.tap.id, 5000);
    assert.equal(receipt.status, 'seen');

    // Presence across instances: Alex, on A, sees Sam (on B) go and come back.
    samOnB.drop();
    await alexOnA.nextNew('presence', (f) => f.userId === sam.userId && f.online === false, 5000);
    const samAgain = await connect(1, sam);
    await alexOnA.nextNew('presence', (f) => f.userId === sam.userId && f.online === true, 5000);
    assert.deepEqual((await samAgain.next('hello')).partners, [{ userId: alex.userId, online: true }]);
    // And the HTTP API on B knows that Alex, connected to A only, is online.
    assert.equal((await call(b, 'GET', '/v1/pairings', sam.accessToken)).body.pairings[0].partner.online, true);
  });

  test('a partner with a phone on A and a watch on B is online until both are gone', async () => {
    const [a, b] = [cluster.url(0), cluster.url(1)];
    const alex = await register(a);
    const sam = await register(a);
    const samWatch = await addDevice(a, sam);
    await pair(a, alex, sam);
    const alexOnA = await connect(0, alex);
    const phone = await connect(0, sam);
    const watch = await connect(1, samWatch);
    await alexOnA.next('presence', (f) => f.userId === sam.userId && f.online === true, 5000);
    await phone.close();
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.equal(
      (await call(b, 'GET', '/v1/pairings', alex.accessToken)).body.pairings[0].partner.online,
      true,
      'the watch is still there',
    );
    assert.equal(alexOnA.of('presence').filter((f) => f.userId === sam.userId && f.online === false).length, 0);
    watch.drop();
    await alexOnA.nextNew('presence', (f) => f.userId === sam.userId && f.online === false, 5000);
  });

  test("signing out through A closes that device's socket on B at once, and B refuses its token at once", async () => {
    const [a, b] = [cluster.url(0), cluster.url(1)];
    const sam = await register(a);
    const watch = await addDevice(a, sam);
    // B has seen the token and remembers its device.
    assert.equal((await call(b, 'GET', '/v1/me', watch.accessToken)).status, 200);
    const onB = await connect(1, watch);
    assert.equal((await call(a, 'POST', '/v1/auth/logout', watch.accessToken)).status, 204);
    assert.equal((await onB.closed).code, 4403);
    assert.equal((await call(b, 'GET', '/v1/me', watch.accessToken)).status, 401);
    // Deleting the account through B closes its sockets on A.
    const phoneOnA = await connect(0, sam);
    assert.equal((await call(b, 'DELETE', '/v1/me', sam.accessToken)).status, 204);
    assert.equal((await phoneOnA.closed).code, 4410);
    assert.equal((await call(a, 'GET', '/v1/me', sam.accessToken)).status, 401);
  });

  test('rate limits are shared: a budget spent on A is spent on B', async () => {
    const [a, b] = [cluster.url(0), cluster.url(1)];
    const alex = await register(a);
    const sam = await register(a);
    await pair(a, alex, sam);
    // Pairing attempts: 20 per user per minute (RATE_LIMIT_PAIRING_PER_MINUTE), shared by both instances.
    const statuses: number[] = [];
    for (let i = 0; i < 22; i++) statuses.push((await call(i % 2 ? b : a, 'POST', '/v1/pairing-codes', alex.accessToken)).status);
    assert.deepEqual(statuses.slice(0, 19), Array(19).fill(201));
    assert.equal(statuses.at(-1), 429);
  });
});

describe('an instance is alone without Redis, and several need it', { skip }, () => {
  test('a second instance without REDIS_URL on the same PostgreSQL database is refused, naming the setting', async () => {
    const cluster = await Cluster.start({ instances: 1, env: { REDIS_URL: '' } });
    try {
      const second = await ServerProcess.run({
        DATABASE_URL: cluster.database.config.kind === 'postgres' ? cluster.database.config.url : '',
        JWT_SECRET: 'x'.repeat(40),
        PORT: '0',
      });
      assert.equal(second.code, 1);
      assert.match(second.stderr, /navi: another instance is running on this PostgreSQL database .*several instances need REDIS_URL/);
      const withRedis = await ServerProcess.run({
        DATABASE_URL: cluster.database.config.kind === 'postgres' ? cluster.database.config.url : '',
        JWT_SECRET: 'x'.repeat(40),
        PORT: '0',
        REDIS_URL: SHARED_REDIS_URL,
      });
      assert.equal(withRedis.code, 1);
      assert.match(withRedis.stderr, /navi: an instance without REDIS_URL is running on this PostgreSQL database/);
    } finally {
      await cluster.close();
    }
  });
});
