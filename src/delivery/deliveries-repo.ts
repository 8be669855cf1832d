import { sql, type ExpressionBuilder } from 'kysely';
import type {
  Database,
  Db,
  DeliveryChannel,
  DeliveryStatus,
  Executor,
  Platform,
  PushEnvironment,
  PushState,
  PushTrigger,
  TapDeliveriesTable,
  TapRow,
  Trx,
} from '../db/schema.ts';

/**
 * Delivery rows: one per tap and device of its recipient, with the device's
 * acknowledgement and the push state machine:
 * waiting (due at push_due_at) -> sending (claimed until push_due_at) -> sent | failed | expired | skipped;
 * not_needed when the device acked first. A retry puts it back to waiting.
 */
export interface DeliveryKey {
  tapSeq: number;
  deviceId: string;
}

/** A delivery's push, with everything deciding on it and sending it needs. */
export interface PushJob extends DeliveryKey {
  tap: TapRow;
  deviceExists: boolean;
  platform: Platform | null;
  status: DeliveryStatus;
  trigger: PushTrigger;
  attempts: number;
  lastReason: string | null;
  pushToken: string | null;
  pushEnvironment: PushEnvironment | null;
  tokenInvalidAt: number | null;
  senderName: string | null;
}

export interface OutcomeUpdate extends DeliveryKey {
  state: PushState;
  reason: string | null;
  dueAt: number | null;
  attempts: number;
  apnsId?: string;
  sentAt?: number;
  invalidateToken?: { token: string; reason: string; at: number; appleTimestamp?: number };
}

/**
 * The condition of the partial index tap_deliveries_push_due, written out
 * literally, and only here: SQLite uses a partial index only when the query
 * repeats its condition as text (with bound parameters it scans the table).
 */
const pushOutstanding = sql<boolean>`push_state in ('waiting', 'sending')`;

const isKey = (eb: ExpressionBuilder<Database, 'tap_deliveries'>, keys: DeliveryKey[]) =>
  eb(
    eb.refTuple('tap_seq', 'device_id'),
    'in',
    keys.map((k) => eb.tuple(k.tapSeq, k.deviceId)),
  );

/** A delivery row as it starts: nothing acked, nothing pushed yet. */
export function newDelivery(tapSeq: number, deviceId: string, recipientId: string): TapDeliveriesTable {
  return {
    tap_seq: tapSeq,
    device_id: deviceId,
    recipient_id: recipientId,
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
  };
}

export async function insertDeliveries(trx: Trx, rows: TapDeliveriesTable[]): Promise<void> {
  if (rows.length > 0) await trx.insertInto('tap_deliveries').values(rows).execute();
}

export interface AckedDelivery extends DeliveryKey {
  status: DeliveryStatus;
  pushState: PushState;
  channel: DeliveryChannel | null;
}

/** The deliveries these acks name (absent: a device added after the tap was written). */
export async function deliveriesForAcks(trx: Trx, keys: DeliveryKey[]): Promise<Map<string, AckedDelivery>> {
  if (keys.length === 0) return new Map();
  const rows = await trx
    .selectFrom('tap_deliveries')
    .select(['tap_seq', 'device_id', 'status', 'push_state', 'channel'])
    .where((eb) => isKey(eb, keys))
    .execute();
  return new Map(
    rows.map((r) => [
      deliveryKeyOf({ tapSeq: r.tap_seq, deviceId: r.device_id }),
      { tapSeq: r.tap_seq, deviceId: r.device_id, status: r.status, pushState: r.push_state, channel: r.channel },
    ]),
  );
}

export const deliveryKeyOf = (key: DeliveryKey): string => `${key.tapSeq}/${key.deviceId}`;

/**
 * Moves a delivery forward after an ack. A push that has not started is no
 * longer needed; decided in the statement itself, since the push dispatcher
 * may be claiming the row at this very moment.
 */
export async function recordAck(
  trx: Trx,
  key: DeliveryKey,
  ack: { status: Exclude<DeliveryStatus, 'pending'>; channel: DeliveryChannel; at: number },
): Promise<void> {
  await trx
    .updateTable('tap_deliveries')
    .set((eb) => ({
      status: ack.status,
      channel: eb.fn.coalesce('channel', eb.val(ack.channel)),
      delivered_at: eb.fn.coalesce('delivered_at', eb.val(ack.at)),
      seen_at: ack.status === 'seen' ? ack.at : null,
      push_state: sql<PushState>`case when push_state = 'waiting' then 'not_needed' else push_state end`,
      push_due_at: sql<number | null>`case when push_state = 'waiting' then null else push_due_at end`,
    }))
    .where('tap_seq', '=', key.tapSeq)
    .where('device_id', '=', key.deviceId)
    .execute();
}

/**
 * Deliveries whose push is due: waiting ones whose time came, and claims
 * whose lease ran out (their instance died). Oldest first, with what deciding
 * on them needs (tap, device, sender's name) in the same read.
 */
export async function findDue(trx: Trx, now: number, limit: number): Promise<PushJob[]> {
  const rows = await trx
    .selectFrom('tap_deliveries as d')
    .innerJoin('taps as t', 't.seq', 'd.tap_seq')
    // A left join: a device removed meanwhile must still settle its push.
    .leftJoin('devices as v', 'v.id', 'd.device_id')
    .leftJoin('users as s', 's.id', 't.sender_id')
    .selectAll('t')
    .select([
      'v.id as existing_device_id',
      'v.platform',
      'd.device_id',
      'd.status',
      'd.push_trigger',
      'd.push_attempts',
      'd.push_last_reason',
      'v.push_token',
      'v.push_environment',
      'v.push_token_invalid_at',
      's.display_name',
    ])
    .where(sql<boolean>`d.push_state in ('waiting', 'sending')`)
    .where('d.push_due_at', '<=', now)
    .orderBy('d.push_due_at')
    .limit(limit)
    .execute();
  return rows.map((r) => ({
    tapSeq: r.seq,
    deviceId: r.device_id,
    tap: {
      seq: r.seq,
      id: r.id,
      sender_id: r.sender_id,
      sender_device_id: r.sender_device_id,
      recipient_id: r.recipient_id,
      sender_pos: r.sender_pos,
      recipient_pos: r.recipient_pos,
      intensity: r.intensity,
      pattern: r.pattern,
      created_at: r.created_at,
      delivered_at: r.delivered_at,
      seen_at: r.seen_at,
    },
    deviceExists: r.existing_device_id !== null,
    platform: r.platform,
    status: r.status,
    trigger: r.push_trigger,
    attempts: r.push_attempts,
    lastReason: r.push_last_reason,
    pushToken: r.push_token,
    pushEnvironment: r.push_environment,
    tokenInvalidAt: r.push_token_invalid_at,
    senderName: r.display_name ?? null,
  }));
}

/**
 * Claims pushes for sending: each moves to 'sending' with a lease
 * (push_due_at in the future). The update only takes rows that are still
 * outstanding and due, so two instances never claim the same one; returns the claimed.
 */
export async function claim(trx: Trx, keys: DeliveryKey[], now: number, leaseUntil: number): Promise<DeliveryKey[]> {
  if (keys.length === 0) return [];
  const rows = await trx
    .updateTable('tap_deliveries')
    .set({ push_state: 'sending', push_due_at: leaseUntil })
    .where((eb) => isKey(eb, keys))
    .where(pushOutstanding)
    .where('push_due_at', '<=', now)
    .returning(['tap_seq', 'device_id'])
    .execute();
  return rows.map((r) => ({ tapSeq: r.tap_seq, deviceId: r.device_id }));
}

/** Settles pushes that need no request (acked first, expired, nothing to push to), if still unclaimed. */
export async function settle(trx: Trx, keys: DeliveryKey[], state: PushState, reason: string, now: number): Promise<number> {
  if (keys.length === 0) return 0;
  const result = await trx
    .updateTable('tap_deliveries')
    .set({ push_state: state, push_last_reason: reason, push_due_at: null })
    .where((eb) => isKey(eb, keys))
    .where(pushOutstanding)
    .where('push_due_at', '<=', now)
    .executeTakeFirst();
  return Number(result.numUpdatedRows);
}

export async function recordOutcome(trx: Trx, update: OutcomeUpdate): Promise<void> {
  await trx
    .updateTable('tap_deliveries')
    .set({
      push_state: update.state,
      push_due_at: update.dueAt,
      push_attempts: update.attempts,
      push_last_reason: update.reason,
      ...(update.apnsId !== undefined ? { push_apns_id: update.apnsId } : {}),
      ...(update.sentAt !== undefined ? { push_sent_at: update.sentAt } : {}),
    })
    .where('tap_seq', '=', update.tapSeq)
    .where('device_id', '=', update.deviceId)
    // An ack that landed while we were sending wins over a retry.
    .where((eb) => (update.state === 'waiting' ? eb('status', '=', 'pending') : eb.lit(true)))
    .execute();
  const invalid = update.invalidateToken;
  if (invalid) {
    // Apple's timestamp says when the token stopped being valid; a token the
    // device registered again after that is a fresh one and stays.
    let query = trx
      .updateTable('devices')
      .set({ push_token_invalid_at: invalid.at, push_token_invalid_reason: invalid.reason })
      .where('id', '=', update.deviceId)
      .where('push_token', '=', invalid.token);
    if (invalid.appleTimestamp !== undefined) query = query.where('push_token_updated_at', '<=', invalid.appleTimestamp);
    await query.execute();
  }
}

export async function nextDueAt(db: Db): Promise<number | undefined> {
  const row = await db
    .selectFrom('tap_deliveries')
    .select((eb) => eb.fn.min('push_due_at').as('due'))
    .where(pushOutstanding)
    .executeTakeFirst();
  return row?.due ?? undefined;
}

/** With one process owning the database (SQLite), a claim still held at start is one the previous process died with. */
export async function reclaimAbandoned(db: Db, now: number): Promise<void> {
  await db.updateTable('tap_deliveries').set({ push_state: 'waiting', push_due_at: now }).where('push_state', '=', 'sending').execute();
}

/** A removed device's pushes still to go; its settled history stays with the taps. */
export async function deleteOutstandingPushes(trx: Executor, deviceId: string): Promise<void> {
  await trx.deleteFrom('tap_deliveries').where(pushOutstanding).where('device_id', '=', deviceId).execute();
}

/** One tap's delivery to each device of its recipient, oldest device first. */
export function deliveriesOfTap(db: Executor, tapSeq: number) {
  return db
    .selectFrom('tap_deliveries as d')
    .innerJoin('devices as v', 'v.id', 'd.device_id')
    .select([
      'd.device_id',
      'v.platform',
      'd.status',
      'd.channel',
      'd.delivered_at',
      'd.seen_at',
      'd.push_state',
      'd.push_trigger',
      'd.push_attempts',
      'd.push_last_reason',
      'd.push_apns_id',
      'd.push_sent_at',
    ])
    .where('d.tap_seq', '=', tapSeq)
    .orderBy('v.created_at')
    .execute();
}

/** With push off, nothing will ever send what is outstanding (pushes left from when it was on): settle it. */
export async function settleOutstandingAsDisabled(db: Db): Promise<number> {
  const result = await db
    .updateTable('tap_deliveries')
    .set({ push_state: 'skipped', push_last_reason: 'PushDisabled', push_due_at: null })
    .where(pushOutstanding)
    .executeTakeFirst();
  return Number(result.numUpdatedRows);
}
