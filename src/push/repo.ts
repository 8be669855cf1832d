import { sql, type ExpressionBuilder } from 'kysely';
import type { Database, Db, DeliveryStatus, PushEnvironment, PushState, PushTrigger, TapRow, Trx } from '../db/schema.ts';

export interface DeliveryKey {
  tapSeq: number;
  deviceId: string;
}

/** Everything needed to decide on, and push, one tap to one device. */
export interface Handoff extends DeliveryKey {
  tap: TapRow;
  deviceExists: boolean;
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
 * literally: SQLite uses a partial index only when the query repeats its
 * condition as text (with bound parameters it scans the whole table).
 */
const claimable = sql<boolean>`push_state in ('waiting', 'sending')`;

const isKey = (eb: ExpressionBuilder<Database, 'tap_deliveries'>, keys: DeliveryKey[]) =>
  eb(
    eb.refTuple('tap_seq', 'device_id'),
    'in',
    keys.map((k) => eb.tuple(k.tapSeq, k.deviceId)),
  );

/**
 * Hand-offs that are due: waiting ones whose time came, and claims whose
 * lease ran out (their instance died). Oldest first, with what deciding on
 * them needs (tap, device token, sender's name) in the same read.
 */
export async function findDue(trx: Trx, now: number, limit: number): Promise<Handoff[]> {
  const rows = await trx
    .selectFrom('tap_deliveries as d')
    .innerJoin('taps as t', 't.seq', 'd.tap_seq')
    // A left join: a device removed meanwhile must still settle its hand-off.
    .leftJoin('devices as v', 'v.id', 'd.device_id')
    .innerJoin('users as s', 's.id', 't.sender_id')
    .selectAll('t')
    .select([
      'v.id as existing_device_id',
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
      intensity: r.intensity,
      pattern: r.pattern,
      created_at: r.created_at,
      delivered_at: r.delivered_at,
      seen_at: r.seen_at,
    },
    deviceExists: r.existing_device_id !== null,
    status: r.status,
    trigger: r.push_trigger,
    attempts: r.push_attempts,
    lastReason: r.push_last_reason,
    pushToken: r.push_token,
    pushEnvironment: r.push_environment,
    tokenInvalidAt: r.push_token_invalid_at,
    senderName: r.display_name,
  }));
}

/**
 * Claims hand-offs for sending: each moves to 'sending' with a lease
 * (push_due_at in the future). The update only takes rows that are still
 * claimable, so two instances never claim the same one; returns the claimed.
 */
export async function claim(trx: Trx, keys: DeliveryKey[], now: number, leaseUntil: number): Promise<DeliveryKey[]> {
  if (keys.length === 0) return [];
  const rows = await trx
    .updateTable('tap_deliveries')
    .set({ push_state: 'sending', push_due_at: leaseUntil })
    .where((eb) => isKey(eb, keys))
    .where(claimable)
    .where('push_due_at', '<=', now)
    .returning(['tap_seq', 'device_id'])
    .execute();
  return rows.map((r) => ({ tapSeq: r.tap_seq, deviceId: r.device_id }));
}

/** Settles hand-offs that need no request (acked first, expired, nothing to push to), if still unclaimed. */
export async function settle(trx: Trx, keys: DeliveryKey[], state: PushState, reason: string, now: number): Promise<number> {
  if (keys.length === 0) return 0;
  const result = await trx
    .updateTable('tap_deliveries')
    .set({ push_state: state, push_last_reason: reason, push_due_at: null })
    .where((eb) => isKey(eb, keys))
    .where(claimable)
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
    .where(claimable)
    .executeTakeFirst();
  return row?.due ?? undefined;
}

export async function reclaimAbandoned(db: Db, now: number): Promise<void> {
  await db.updateTable('tap_deliveries').set({ push_state: 'waiting', push_due_at: now }).where('push_state', '=', 'sending').execute();
}
