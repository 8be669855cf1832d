import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { afterEach, beforeEach, describe, test } from 'node:test';
import { startTestApp, type TestApp } from '../support/app.ts';
import { addDevice, pair, problemOf, sendTap, signUp, type User } from '../support/clients.ts';

type Tap = {
  id: string;
  cursor: string;
  from: string;
  to: string;
  intensity: string;
  pattern: string;
  status: string;
  deliveredAt: string | null;
  seenAt: string | null;
};
type Page = { taps: Tap[]; nextCursor: string | null; hasMore: boolean };

describe('taps', () => {
  let t: TestApp;
  let alex: User;
  let sam: User;
  beforeEach(async () => {
    t = await startTestApp();
    alex = await signUp(t);
    sam = await signUp(t);
    await pair(alex, sam);
  });
  afterEach(() => t.close());

  test('a tap to a partner is stored and returned with its cursor and status', async () => {
    const response = await alex.request('POST', '/v1/taps', { to: sam.userId, intensity: 'strong', pattern: 'heartbeat' });
    assert.equal(response.statusCode, 201);
    const { tap } = response.json<{ tap: Tap }>();
    assert.equal(tap.from, alex.userId);
    assert.equal(tap.to, sam.userId);
    assert.equal(tap.intensity, 'strong');
    assert.equal(tap.pattern, 'heartbeat');
    assert.equal(tap.status, 'sent');
    assert.match(tap.cursor, /^\d+$/);
    const history = (await sam.request('GET', '/v1/taps')).json<Page>();
    assert.deepEqual(
      history.taps.map((x) => x.id),
      [tap.id],
    );
  });

  test('taps only go to partners: a stranger, yourself and an ex are NOT_PAIRED', async () => {
    const stranger = await signUp(t);
    for (const to of [stranger.userId, alex.userId, randomUUID()]) {
      const r = await alex.request('POST', '/v1/taps', { to, intensity: 'light', pattern: 'single' });
      assert.equal(r.statusCode, 403);
      assert.equal(problemOf(r).code, 'NOT_PAIRED');
    }
    const pairings = (await alex.request('GET', '/v1/pairings')).json();
    await alex.request('DELETE', `/v1/pairings/${pairings.pairings[0].id}`);
    const r = await alex.request('POST', '/v1/taps', { to: sam.userId, intensity: 'light', pattern: 'single' });
    assert.equal(problemOf(r).code, 'NOT_PAIRED');
  });

  test('a client-chosen id makes the send idempotent: same body -> 200 and the same tap, other body -> 422', async () => {
    const id = randomUUID();
    const body = { id, to: sam.userId, intensity: 'medium', pattern: 'double' };
    const first = await alex.request('POST', '/v1/taps', body);
    const again = await alex.request('POST', '/v1/taps', body);
    assert.equal(first.statusCode, 201);
    assert.equal(again.statusCode, 200);
    assert.deepEqual(again.json(), first.json());
    const changed = await alex.request('POST', '/v1/taps', { ...body, pattern: 'triple' });
    assert.equal(changed.statusCode, 422);
    assert.equal(problemOf(changed).code, 'IDEMPOTENCY_CONFLICT');
    // Someone else reusing the id learns nothing about the tap.
    const other = await sam.request('POST', '/v1/taps', { ...body, to: alex.userId });
    assert.equal(problemOf(other).code, 'IDEMPOTENCY_CONFLICT');
    assert.equal((await sam.request('GET', '/v1/taps')).json<Page>().taps.length, 1);
  });

  test('concurrent retries of one tap id create it exactly once', async () => {
    const body = { id: randomUUID(), to: sam.userId, intensity: 'medium', pattern: 'double' };
    const results = await Promise.all(Array.from({ length: 8 }, () => alex.request('POST', '/v1/taps', body)));
    assert.deepEqual(results.map((r) => r.statusCode).sort(), [200, 200, 200, 200, 200, 200, 200, 201]);
    assert.equal(new Set(results.map((r) => r.json().tap.cursor)).size, 1);
    assert.equal((await sam.request('GET', '/v1/taps')).json<Page>().taps.length, 1);
  });

  test('concurrent taps from many senders are all committed, each at its own position of both logs, with no holes', async () => {
    const others = await Promise.all(Array.from({ length: 4 }, () => signUp(t)));
    for (const other of others) await pair(other, sam);
    const senders = [alex, ...others];
    const sent = await Promise.all(senders.map((u) => Promise.all(Array.from({ length: 10 }, () => sendTap(u, sam)))));
    const history = (await sam.request('GET', '/v1/taps?limit=100')).json<Page>();
    assert.equal(history.taps.length, 50);
    assert.deepEqual(new Set(history.taps.map((x) => x.id)), new Set(sent.flat().map((x) => x.id)));
    // Sam's log: five pairings, then the 50 taps at positions 6 to 55, each once.
    assert.deepEqual(
      history.taps.map((x) => Number(x.cursor)).sort((a, b) => a - b),
      Array.from({ length: 50 }, (_, i) => i + 6),
    );
    // Each sender's log: the pairing with Sam, then its 10 taps at 2 to 11.
    for (const taps of sent) {
      assert.deepEqual(
        taps.map((x) => Number(x.cursor)).sort((a, b) => a - b),
        Array.from({ length: 10 }, (_, i) => i + 2),
      );
    }
  });

  test('history: newest first, paged back with before, filtered by partner, caught up with after', async () => {
    const jo = await signUp(t);
    await pair(jo, sam);
    const sent: Tap[] = [];
    for (let i = 0; i < 7; i++) sent.push((await sendTap(i % 2 ? sam : alex, i % 2 ? alex : sam)) as Tap);
    const joTap = (await sendTap(jo, sam)) as Tap;

    const page1 = (await sam.request('GET', '/v1/taps?limit=3')).json<Page>();
    assert.deepEqual(
      page1.taps.map((x) => x.id),
      [joTap.id, sent[6]!.id, sent[5]!.id],
    );
    assert.equal(page1.hasMore, true);
    const page2 = (await sam.request('GET', `/v1/taps?limit=3&before=${page1.nextCursor}`)).json<Page>();
    assert.deepEqual(
      page2.taps.map((x) => x.id),
      [sent[4]!.id, sent[3]!.id, sent[2]!.id],
    );
    const page3 = (await sam.request('GET', `/v1/taps?limit=3&before=${page2.nextCursor}`)).json<Page>();
    assert.deepEqual(
      page3.taps.map((x) => x.id),
      [sent[1]!.id, sent[0]!.id],
    );
    assert.equal(page3.nextCursor, null);
    assert.equal(page3.hasMore, false);

    const withAlex = (await sam.request('GET', `/v1/taps?with=${alex.userId}&limit=100`)).json<Page>();
    assert.deepEqual(
      withAlex.taps.map((x) => x.id),
      sent.map((x) => x.id).reverse(),
    );

    // Cursors are positions in the caller's own log: Sam catches up from where he saw sent[4].
    const samsCursor = page2.taps[0]!.cursor;
    assert.notEqual(samsCursor, sent[4]!.cursor, "the sender's log numbers the tap differently");
    const caughtUp = (await sam.request('GET', `/v1/taps?after=${samsCursor}&limit=2`)).json<Page>();
    assert.deepEqual(
      caughtUp.taps.map((x) => x.id),
      [sent[5]!.id, sent[6]!.id],
    );
    assert.equal(caughtUp.hasMore, true);
    const rest = (await sam.request('GET', `/v1/taps?after=${caughtUp.nextCursor}&limit=2`)).json<Page>();
    assert.deepEqual(
      rest.taps.map((x) => x.id),
      [joTap.id],
    );
    const nothing = (await sam.request('GET', `/v1/taps?after=${rest.nextCursor}`)).json<Page>();
    assert.deepEqual(nothing, { taps: [], nextCursor: rest.nextCursor, hasMore: false });

    // Alex does not see what Jo and Sam exchanged.
    assert.ok(!(await alex.request('GET', '/v1/taps?limit=100')).json<Page>().taps.some((x) => x.id === joTap.id));
  });

  test('history query validation: limit range, cursor format, before with after', async () => {
    for (const query of ['limit=0', 'limit=101', 'limit=x', 'before=abc', 'after=-1', `before=1&after=2`, 'with=nope', 'unknown=1']) {
      const r = await sam.request('GET', `/v1/taps?${query}`);
      assert.equal(r.statusCode, 400, query);
      assert.equal(problemOf(r).code, 'INVALID_INPUT', query);
    }
  });

  test('the recipient acks over HTTP; acks move forward only and the sender sees the status', async () => {
    const watch = await addDevice(t, sam, 'watchos');
    const tap = await sendTap(alex, sam);
    assert.equal((await watch.request('POST', `/v1/taps/${tap.id}/ack`, { status: 'delivered' })).statusCode, 204);
    let detail = (await alex.request('GET', `/v1/taps/${tap.id}`)).json();
    assert.equal(detail.tap.status, 'delivered');
    const watchDelivery = detail.deliveries.find((d: { deviceId: string }) => d.deviceId === watch.deviceId);
    assert.equal(watchDelivery.status, 'delivered');
    assert.equal(watchDelivery.channel, 'http');
    assert.equal(detail.deliveries.find((d: { deviceId: string }) => d.deviceId === sam.deviceId).status, 'pending');

    assert.equal((await watch.request('POST', `/v1/taps/${tap.id}/ack`, { status: 'seen' })).statusCode, 204);
    assert.equal((await watch.request('POST', `/v1/taps/${tap.id}/ack`, { status: 'delivered' })).statusCode, 204);
    detail = (await alex.request('GET', `/v1/taps/${tap.id}`)).json();
    assert.equal(detail.tap.status, 'seen');
    assert.ok(detail.tap.seenAt >= detail.tap.deliveredAt);
    const sentView = (await alex.request('GET', '/v1/taps')).json<Page>().taps[0]!;
    assert.equal(sentView.status, 'seen');
  });

  test('a device added after the tap was sent can ack it from history', async () => {
    const tap = await sendTap(alex, sam);
    const newWatch = await addDevice(t, sam, 'watchos');
    assert.equal((await newWatch.request('POST', `/v1/taps/${tap.id}/ack`, { status: 'seen' })).statusCode, 204);
    const detail = (await alex.request('GET', `/v1/taps/${tap.id}`)).json();
    assert.equal(detail.tap.status, 'seen');
    const delivery = detail.deliveries.find((d: { deviceId: string }) => d.deviceId === newWatch.deviceId);
    assert.deepEqual([delivery.status, delivery.channel, delivery.push.state], ['seen', 'http', 'not_needed']);
  });

  test('only the recipient may ack, and only the two partners may read a tap', async () => {
    const tap = await sendTap(alex, sam);
    const stranger = await signUp(t);
    for (const user of [alex, stranger]) {
      const r = await user.request('POST', `/v1/taps/${tap.id}/ack`, { status: 'seen' });
      assert.equal(r.statusCode, 404);
      assert.equal(problemOf(r).code, 'NOT_FOUND');
    }
    assert.equal((await stranger.request('GET', `/v1/taps/${tap.id}`)).statusCode, 404);
    assert.equal((await sam.request('GET', `/v1/taps/${tap.id}`)).statusCode, 200);
    assert.equal((await sam.request('POST', `/v1/taps/${randomUUID()}/ack`, { status: 'seen' })).statusCode, 404);
    assert.equal((await alex.request('GET', `/v1/taps/${tap.id}`)).json().tap.status, 'sent');
  });

  test('sending is rate limited per user', async () => {
    await t.close();
    t = await startTestApp({ env: { RATE_LIMIT_TAPS_PER_MINUTE: '5' } });
    alex = await signUp(t);
    sam = await signUp(t);
    await pair(alex, sam);
    const results = await Promise.all(
      Array.from({ length: 7 }, () => alex.request('POST', '/v1/taps', { to: sam.userId, intensity: 'light', pattern: 'single' })),
    );
    assert.deepEqual(results.map((r) => r.statusCode).sort(), [201, 201, 201, 201, 201, 429, 429]);
  });
});
