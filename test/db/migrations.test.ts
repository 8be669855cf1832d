import assert from 'node:assert/strict';
import { afterEach, describe, test } from 'node:test';
import { sql, type Kysely } from 'kysely';
import { migrateToLatest, migratorFor, openDatabase } from '../../src/db/database.ts';
import { deliveriesOfTap } from '../../src/delivery/deliveries-repo.ts';
import { findTap } from '../../src/delivery/taps-repo.ts';
import { toSessionView } from '../../src/modules/auth/service.ts';
import { createLogger } from '../../src/logger.ts';
import { startTestApp, type TestApp } from '../support/app.ts';
import { asUser, sendTap } from '../support/clients.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { LogDevice } from '../support/log-device.ts';

const T0 = Date.UTC(2026, 10, 1);
const ids = {
  alex: '0190a000-0000-7000-8000-00000000000a',
  sam: '0190a000-0000-7000-8000-00000000000b',
  jo: '0190a000-0000-7000-8000-00000000000c',
  alexPhone: '0190a000-0000-7000-8000-0000000000a1',
  samPhone: '0190a000-0000-7000-8000-0000000000b1',
  samWatch: '0190a000-0000-7000-8000-0000000000b2',
  joPhone: '0190a000-0000-7000-8000-0000000000c1',
  alexSam: '0190a000-0000-7000-8000-0000000000ab',
  samJo: '0190a000-0000-7000-8000-0000000000bc',
  tap1: '0190a000-0000-7000-8000-000000000001',
  tap2: '0190a000-0000-7000-8000-000000000002',
  tap3: '0190a000-0000-7000-8000-000000000003',
  tap4: '0190a000-0000-7000-8000-000000000004',
};

/** What the first version (migration 001) wrote: its tables, its global cursor `seq`, its delivery rows. */
async function writeWithTheFirstSchema(db: Kysely<unknown>): Promise<void> {
  const users = [ids.alex, ids.sam, ids.jo].map((id) => ({ id, display_name: id === ids.alex ? 'Alex' : null, created_at: T0 }));
  await db
    .insertInto('users' as never)
    .values(users as never)
    .execute();
  const device = (id: string, user_id: string, platform: string, push_token: string | null = null) => ({
    id,
    user_id,
    platform,
    name: null,
    created_at: T0,
    push_token,
    push_environment: push_token ? 'production' : null,
    push_token_updated_at: push_token ? T0 : null,
    push_token_invalid_at: null,
    push_token_invalid_reason: null,
  });
  await db
    .insertInto('devices' as never)
    .values([
      device(ids.alexPhone, ids.alex, 'ios'),
      device(ids.samPhone, ids.sam, 'ios'),
      device(ids.samWatch, ids.sam, 'watchos', 'ab'.repeat(32)),
      device(ids.joPhone, ids.jo, 'ios'),
    ] as never)
    .execute();
  await db
    .insertInto('pairings' as never)
    .values([
      { id: ids.alexSam, user_a: ids.alex, user_b: ids.sam, created_at: T0 },
      { id: ids.samJo, user_a: ids.sam, user_b: ids.jo, created_at: T0 + 30 },
    ] as never)
    .execute();
  const tap = (id: string, from: string, to: string, at: number, delivered: number | null, seen: number | null) => ({
    id,
    sender_id: from,
    sender_device_id: from === ids.alex ? ids.alexPhone : from === ids.sam ? ids.samPhone : ids.joPhone,
    recipient_id: to,
    intensity: 'strong',
    pattern: 'heartbeat',
    created_at: at,
    delivered_at: delivered,
    seen_at: seen,
  });
  // One at a time: seq, the old cursor, is allocated in this order.
  for (const row of [
    tap(ids.tap1, ids.alex, ids.sam, T0 + 10, T0 + 15, T0 + 16),
    tap(ids.tap2, ids.sam, ids.alex, T0 + 20, T0 + 25, null),
    tap(ids.tap3, ids.jo, ids.sam, T0 + 40, null, null),
    tap(ids.tap4, ids.alex, ids.sam, T0 + 50, null, null),
  ])
    await db
      .insertInto('taps' as never)
      .values(row as never)
      .execute();
  const seqOf = async (id: string) => Number((await sql<{ seq: number }>`select seq from taps where id = ${id}`.execute(db)).rows[0]!.seq);
  const delivery = (tapId: number, deviceId: string, fields: Record<string, unknown>) => ({
    tap_seq: tapId,
    device_id: deviceId,
    recipient_id: ids.sam,
    status: 'pending',
    channel: null,
    delivered_at: null,
    seen_at: null,
    push_state: 'waiting',
    push_trigger: 'offline',
    push_due_at: null,
    push_attempts: 0,
    push_last_reason: null,
    push_apns_id: null,
    push_sent_at: null,
    ...fields,
  });
  const tap1 = await seqOf(ids.tap1);
  const tap4 = await seqOf(ids.tap4);
  await db
    .insertInto('tap_deliveries' as never)
    .values([
      delivery(tap1, ids.samPhone, {
        status: 'seen',
        channel: 'websocket',
        delivered_at: T0 + 15,
        seen_at: T0 + 16,
        push_state: 'not_needed',
      }),
      delivery(tap4, ids.samPhone, { push_trigger: 'no_ack', push_due_at: T0 + 3050 }),
      delivery(tap4, ids.samWatch, { push_state: 'sent', push_attempts: 1, push_apns_id: 'apns-1', push_sent_at: T0 + 51 }),
    ] as never)
    .execute();
}

describe('migrations upgrade a database written by the first version', () => {
  let database: TestDatabase | undefined;
  let t: TestApp | undefined;
  afterEach(async () => {
    await t?.close({ keepDatabase: true });
    await database?.drop();
    t = undefined;
    database = undefined;
  });

  test('002, the delivery log: every tap, receipt and pairing becomes a log entry, in order; delivery state is kept', async () => {
    database = await createTestDatabase();
    const handle = openDatabase(database.config);
    try {
      await database.whileMigrating(async () => {
        const { error } = await (await migratorFor(handle)).migrateTo('001-initial');
        assert.ifError(error);
      });
      await writeWithTheFirstSchema(handle.db as unknown as Kysely<unknown>);
      await database.whileMigrating(() => migrateToLatest(handle, createLogger({ logLevel: 'silent' })));

      // Delivery state, as the first version left it.
      const tap4 = (await findTap(handle.db, ids.tap4))!;
      assert.deepEqual([tap4.sender_pos, tap4.recipient_pos], [6, 7]);
      const rows = await handle.db
        .selectFrom('tap_deliveries')
        .select(['device_id', 'push_state', 'push_due_at', 'push_apns_id'])
        .where('tap_seq', '=', tap4.seq)
        .orderBy('device_id')
        .execute();
      assert.deepEqual(
        rows.map((r) => [r.device_id, r.push_state, r.push_due_at ?? r.push_apns_id]),
        [
          [ids.samPhone, 'waiting', T0 + 3050],
          [ids.samWatch, 'sent', 'apns-1'],
        ],
      );
      assert.equal((await deliveriesOfTap(handle.db, tap4.seq)).length, 2);
    } finally {
      await handle.close();
    }

    t = await startTestApp({ database, listen: true });
    const session = async (userId: string) => asUser(t!, toSessionView(await t!.ctx.services.auth.addDevice(userId, { platform: 'ios' })));
    const [alex, sam, jo] = [await session(ids.alex), await session(ids.sam), await session(ids.jo)];

    // Each log, in the order things happened: pairings, taps, receipts of the taps one sent.
    const samsLog = [
      `paired:${ids.alexSam}`,
      `tap:${ids.tap1}`,
      `tap:${ids.tap2}`,
      `status:${ids.tap2}:delivered`,
      `paired:${ids.samJo}`,
      `tap:${ids.tap3}`,
      `tap:${ids.tap4}`,
    ];
    const alexsLog = [
      `paired:${ids.alexSam}`,
      `tap:${ids.tap1}`,
      `status:${ids.tap1}:delivered`,
      `status:${ids.tap1}:seen`,
      `tap:${ids.tap2}`,
      `tap:${ids.tap4}`,
    ];
    for (const [user, log] of [
      [sam, samsLog],
      [alex, alexsLog],
      [jo, [`paired:${ids.samJo}`, `tap:${ids.tap3}`]],
    ] as const) {
      const device = new LogDevice(user.userId, user);
      await device.connect(t.wsUrl);
      device.assertSees([...log], 'replayed from the migrated log');
      device.drop();
    }
    const history = (await sam.request('GET', '/v1/taps')).json<{ taps: Array<{ id: string; cursor: string; status: string }> }>();
    assert.deepEqual(
      history.taps.map((x) => [x.id, x.cursor, x.status]),
      [
        [ids.tap4, '7', 'sent'],
        [ids.tap3, '6', 'sent'],
        [ids.tap2, '3', 'delivered'],
        [ids.tap1, '2', 'seen'],
      ],
    );

    // The logs go on from where the migration left them.
    const next = await sendTap(sam, alex);
    assert.equal(next.cursor, '8');
    // Jo leaves: the tap they sent is gone from Sam's history, and Sam's log says so.
    assert.equal((await jo.request('DELETE', '/v1/me')).statusCode, 204);
    const device = new LogDevice('sam again', sam);
    await device.connect(t.wsUrl);
    assert.equal(device.entries.get(6), `deleted:${ids.tap3}`);
    assert.equal(device.entries.get(9), `unpaired:${ids.samJo}:account_deleted`);
    device.drop();
    const after = (await sam.request('GET', '/v1/taps')).json<{ taps: Array<{ id: string }> }>();
    assert.ok(!after.taps.some((x) => x.id === ids.tap3));
  });
});
