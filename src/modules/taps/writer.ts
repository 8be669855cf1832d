import type { Intensity, Pattern, PushState, TapDeliveriesTable, TapRow, Trx } from '../../db/schema.ts';
import { AppError } from '../../errors.ts';
import { pushVerdict } from '../../push/policy.ts';
import type { Handoff } from '../../push/repo.ts';

/** A tap as it arrives, before it has a cursor. */
export interface TapDraft {
  id: string;
  /** The recipient's devices holding a live socket when the tap was sent. */
  onlineDeviceIds: string[];
  /** The client chose the id, so a row with it may already exist (a retry). */
  clientChosenId: boolean;
  senderId: string;
  senderDeviceId: string;
  recipientId: string;
  intensity: Intensity;
  pattern: Pattern;
  createdAt: number;
}

export interface WrittenTap {
  row: TapRow;
  /** False when the draft repeated an existing tap (idempotent retry). */
  created: boolean;
  /** Devices without a live socket to push now: already claimed in the same transaction. */
  pushNow: Handoff[];
  /** When the ack window of a device with a live socket ends, if one has it. */
  pushDueAt?: number;
}

/** The delivery policy's settings (docs/delivery.md). */
export interface DeliveryPolicy {
  ackWindowMs: number;
  tapTtlMs: number;
  pushEnabled: boolean;
  /** How long a claim made here stays ours (see push/dispatcher.ts). */
  leaseMs: number;
}

/** What the policy decided, for the metrics (counted where the metrics live). */
export interface PolicyCounts {
  offlineHandoffs: number;
  settled: Array<{ state: PushState; reason: string }>;
}

const sameTap = (row: TapRow, draft: TapDraft): boolean =>
  row.sender_id === draft.senderId &&
  row.recipient_id === draft.recipientId &&
  row.intensity === draft.intensity &&
  row.pattern === draft.pattern;

const coupleKey = (a: string, b: string): string => (a < b ? `${a}|${b}` : `${b}|${a}`);

const idempotencyConflict = () => new AppError('IDEMPOTENCY_CONFLICT', 'A different tap already uses this id; use a new id for a new tap');

/**
 * Writes a batch of taps inside the caller's transaction with a handful of
 * set-based statements, whatever the batch size: existing ids, pairings, the
 * inserts, the recipients' devices and their delivery rows. Per-tap refusals
 * (NOT_PAIRED, IDEMPOTENCY_CONFLICT) are returned in place, not thrown.
 */
export async function writeTapBatch(
  trx: Trx,
  policy: DeliveryPolicy,
  counts: PolicyCounts,
  drafts: TapDraft[],
): Promise<Array<WrittenTap | AppError>> {
  const existing = await existingTaps(trx, drafts);
  const couples = await pairedCouples(trx, drafts);

  const outcomes: Array<WrittenTap | AppError | undefined> = [];
  const toInsert = new Map<string, TapDraft>();
  drafts.forEach((draft, i) => {
    const stored = existing.get(draft.id);
    if (stored) {
      outcomes[i] = sameTap(stored, draft) ? { row: stored, created: false, pushNow: [] } : idempotencyConflict();
    } else if (!couples.has(coupleKey(draft.senderId, draft.recipientId))) {
      outcomes[i] = new AppError('NOT_PAIRED', 'You can only send taps to a partner');
    } else if (!toInsert.has(draft.id)) {
      toInsert.set(draft.id, draft);
    }
  });
  if (toInsert.size === 0) return outcomes as Array<WrittenTap | AppError>;

  const rows = await insertTaps(trx, [...toInsert.values()]);
  const deliveries = await insertDeliveries(trx, policy, counts, rows, drafts);
  drafts.forEach((draft, i) => {
    if (outcomes[i]) return;
    const row = rows.get(draft.id)!;
    // The first draft with an id created the row; a duplicate within the same batch is its retry.
    if (toInsert.get(draft.id) !== draft) {
      outcomes[i] = sameTap(row, draft) ? { row, created: false, pushNow: [] } : idempotencyConflict();
      return;
    }
    const plan = deliveries.get(row.id);
    outcomes[i] = { row, created: true, pushNow: plan?.pushNow ?? [], pushDueAt: plan?.dueAt };
  });
  return outcomes as Array<WrittenTap | AppError>;
}

async function existingTaps(trx: Trx, drafts: TapDraft[]): Promise<Map<string, TapRow>> {
  const ids = [...new Set(drafts.filter((d) => d.clientChosenId).map((d) => d.id))];
  if (ids.length === 0) return new Map();
  const rows = await trx.selectFrom('taps').selectAll().where('id', 'in', ids).execute();
  return new Map(rows.map((row) => [row.id, row]));
}

async function pairedCouples(trx: Trx, drafts: TapDraft[]): Promise<Set<string>> {
  const couples = new Map<string, [string, string]>();
  for (const d of drafts) {
    const [a, b] = d.senderId < d.recipientId ? [d.senderId, d.recipientId] : [d.recipientId, d.senderId];
    couples.set(`${a}|${b}`, [a, b]);
  }
  const rows = await trx
    .selectFrom('pairings')
    .select(['user_a', 'user_b'])
    .where((eb) => eb.or([...couples.values()].map(([a, b]) => eb.and([eb('user_a', '=', a), eb('user_b', '=', b)]))))
    .execute();
  return new Set(rows.map((row) => `${row.user_a}|${row.user_b}`));
}

async function insertTaps(trx: Trx, drafts: TapDraft[]): Promise<Map<string, TapRow>> {
  const inserted = await trx
    .insertInto('taps')
    .values(
      drafts.map((d) => ({
        id: d.id,
        sender_id: d.senderId,
        sender_device_id: d.senderDeviceId,
        recipient_id: d.recipientId,
        intensity: d.intensity,
        pattern: d.pattern,
        created_at: d.createdAt,
        delivered_at: null,
        seen_at: null,
      })),
    )
    .returningAll()
    .execute();
  return new Map(inserted.map((row) => [row.id, row]));
}

/**
 * One delivery row per device of each recipient, with the delivery policy
 * applied at once (docs/delivery.md): a device with a live socket gets the ack
 * window before push takes over; a device without one is either claimed for
 * an immediate push (handed to the dispatcher in memory after the commit), or
 * settled right here when there is nothing to push to.
 */
async function insertDeliveries(
  trx: Trx,
  policy: DeliveryPolicy,
  counts: PolicyCounts,
  taps: Map<string, TapRow>,
  drafts: TapDraft[],
): Promise<Map<string, { pushNow: Handoff[]; dueAt?: number }>> {
  const online = new Set(drafts.flatMap((draft) => draft.onlineDeviceIds));
  const recipients = [...new Set([...taps.values()].map((t) => t.recipient_id))];
  const devices = await trx
    .selectFrom('devices')
    .select(['id', 'user_id', 'push_token', 'push_environment', 'push_token_invalid_at'])
    .where('user_id', 'in', recipients)
    .execute();
  const devicesOf = Map.groupBy(devices, (device) => device.user_id);
  const plans = new Map<string, { pushNow: Handoff[]; dueAt?: number }>();
  const rows: TapDeliveriesTable[] = [];
  const toPush: Array<{ tap: TapRow; device: (typeof devices)[number] }> = [];

  for (const tap of taps.values()) {
    const plan: { pushNow: Handoff[]; dueAt?: number } = { pushNow: [] };
    plans.set(tap.id, plan);
    for (const device of devicesOf.get(tap.recipient_id) ?? []) {
      const row = newDelivery(tap.seq, device.id, tap.recipient_id);
      rows.push(row);
      if (online.has(device.id)) {
        row.push_trigger = 'no_ack';
        row.push_due_at = tap.created_at + policy.ackWindowMs;
        plan.dueAt = Math.min(plan.dueAt ?? Infinity, row.push_due_at);
        continue;
      }
      counts.offlineHandoffs++;
      const target = {
        status: 'pending' as const,
        tapCreatedAt: tap.created_at,
        pushToken: device.push_token,
        pushEnvironment: device.push_environment,
        tokenInvalidAt: device.push_token_invalid_at,
        lastReason: null,
      };
      const verdict = pushVerdict(target, tap.created_at, policy.tapTtlMs, policy.pushEnabled);
      if (verdict === 'send') {
        row.push_state = 'sending';
        row.push_due_at = tap.created_at + policy.leaseMs;
        toPush.push({ tap, device });
      } else {
        row.push_state = verdict.state;
        row.push_last_reason = verdict.reason;
        counts.settled.push(verdict);
      }
    }
  }
  if (rows.length > 0) await trx.insertInto('tap_deliveries').values(rows).execute();
  if (toPush.length > 0) {
    const names = await senderNames(
      trx,
      toPush.map(({ tap }) => tap.sender_id),
    );
    for (const { tap, device } of toPush) {
      plans.get(tap.id)!.pushNow.push({
        tapSeq: tap.seq,
        deviceId: device.id,
        deviceExists: true,
        tap,
        status: 'pending',
        trigger: 'offline',
        attempts: 0,
        lastReason: null,
        pushToken: device.push_token,
        pushEnvironment: device.push_environment,
        tokenInvalidAt: device.push_token_invalid_at,
        senderName: names.get(tap.sender_id) ?? null,
      });
    }
  }
  return plans;
}

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

async function senderNames(trx: Trx, senderIds: string[]): Promise<Map<string, string | null>> {
  const rows = await trx
    .selectFrom('users')
    .select(['id', 'display_name'])
    .where('id', 'in', [...new Set(senderIds)])
    .execute();
  return new Map(rows.map((row) => [row.id, row.display_name]));
}
