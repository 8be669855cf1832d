import type { DatabaseHandle } from '../db/database.ts';
import type { Db, DeliveryStatus, PushEnvironment, PushState, PushTrigger, TapRow, Trx } from '../db/schema.ts';

export interface DeliveryKey {
  tapId: string;
  deviceId: string;
}

/** Everything needed to push one tap to one device. */
export interface Handoff {
  tap: TapRow;
  deviceId: string;
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

const CLAIMABLE: PushState[] = ['waiting', 'sending'];

/**
 * Claims due hand-offs: each row moves to 'sending' with a lease (push_due_at
 * in the future). The conditional update makes a row claimable by exactly one
 * instance; an expired lease (a crashed instance) makes it claimable again.
 */
export async function claimDue(database: DatabaseHandle, now: number, leaseMs: number, limit: number): Promise<DeliveryKey[]> {
  return database.db.transaction().execute(async (trx) => {
    const due = await trx
      .selectFrom('tap_deliveries')
      .select(['tap_id', 'device_id'])
      .where('push_state', 'in', CLAIMABLE)
      .where('push_due_at', '<=', now)
      .orderBy('push_due_at')
      .limit(limit)
      .execute();
    const claimed: DeliveryKey[] = [];
    for (const row of due) {
      const result = await trx
        .updateTable('tap_deliveries')
        .set({ push_state: 'sending', push_due_at: now + leaseMs })
        .where('tap_id', '=', row.tap_id)
        .where('device_id', '=', row.device_id)
        .where('push_state', 'in', CLAIMABLE)
        .where('push_due_at', '<=', now)
        .executeTakeFirst();
      if (result.numUpdatedRows === 1n) claimed.push({ tapId: row.tap_id, deviceId: row.device_id });
    }
    return claimed;
  });
}

export async function loadHandoffs(db: Db, keys: DeliveryKey[]): Promise<Handoff[]> {
  if (keys.length === 0) return [];
  const rows = await db
    .selectFrom('tap_deliveries as d')
    .innerJoin('taps as t', 't.id', 'd.tap_id')
    .innerJoin('devices as v', 'v.id', 'd.device_id')
    .innerJoin('users as s', 's.id', 't.sender_id')
    .selectAll('t')
    .select([
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
    .where((eb) => eb.or(keys.map((k) => eb.and([eb('d.tap_id', '=', k.tapId), eb('d.device_id', '=', k.deviceId)]))))
    .execute();
  return rows.map((r) => ({
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
    deviceId: r.device_id,
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
    .where('tap_id', '=', update.tapId)
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
    .where('push_state', 'in', CLAIMABLE)
    .executeTakeFirst();
  return row?.due ?? undefined;
}

export async function reclaimAbandoned(db: Db, now: number): Promise<void> {
  await db.updateTable('tap_deliveries').set({ push_state: 'waiting', push_due_at: now }).where('push_state', '=', 'sending').execute();
}
