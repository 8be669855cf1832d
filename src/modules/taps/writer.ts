import type { DatabaseHandle } from '../../db/database.ts';
import type { Intensity, Pattern, TapRow, Trx } from '../../db/schema.ts';
import { AppError } from '../../errors.ts';
import type { Presence } from '../../realtime/presence.ts';

/** A tap as it arrives, before it has a cursor. */
export interface TapDraft {
  id: string;
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
  /** Earliest push hand-off of the recipient's devices, when one was scheduled. */
  pushDueAt?: number;
}

const sameTap = (row: TapRow, draft: TapDraft): boolean =>
  row.sender_id === draft.senderId &&
  row.recipient_id === draft.recipientId &&
  row.intensity === draft.intensity &&
  row.pattern === draft.pattern;

const coupleKey = (a: string, b: string): string => (a < b ? `${a}|${b}` : `${b}|${a}`);

/**
 * Commits a batch of taps in one transaction with a handful of set-based
 * statements, whatever the batch size: existing ids, pairings, the inserts,
 * the recipients' devices and their delivery rows. Per-tap refusals
 * (NOT_PAIRED, IDEMPOTENCY_CONFLICT) are returned in place, not thrown.
 */
export async function writeTapBatch(
  database: DatabaseHandle,
  presence: Presence,
  ackWindowMs: number,
  drafts: TapDraft[],
): Promise<Array<WrittenTap | AppError>> {
  return database.db.transaction().execute(async (trx) => {
    await database.lockTapSequence(trx);
    const existing = await existingTaps(trx, drafts);
    const couples = await pairedCouples(trx, drafts);

    const outcomes: Array<WrittenTap | AppError | undefined> = [];
    const toInsert = new Map<string, TapDraft>();
    drafts.forEach((draft, i) => {
      const stored = existing.get(draft.id);
      if (stored) {
        outcomes[i] = sameTap(stored, draft) ? { row: stored, created: false } : idempotencyConflict();
      } else if (!couples.has(coupleKey(draft.senderId, draft.recipientId))) {
        outcomes[i] = new AppError('NOT_PAIRED', 'You can only send taps to a partner');
      } else if (!toInsert.has(draft.id)) {
        toInsert.set(draft.id, draft);
      }
    });
    if (toInsert.size === 0) return outcomes as Array<WrittenTap | AppError>;

    const rows = await insertTaps(trx, [...toInsert.values()]);
    const dueAt = await insertDeliveries(trx, presence, ackWindowMs, rows);
    drafts.forEach((draft, i) => {
      if (outcomes[i]) return;
      const row = rows.get(draft.id)!;
      // The first draft with an id created the row; a duplicate within the same batch is its retry.
      const created = toInsert.get(draft.id) === draft;
      outcomes[i] = created
        ? { row, created, pushDueAt: dueAt.get(row.recipient_id) }
        : sameTap(row, draft)
          ? { row, created }
          : idempotencyConflict();
    });
    return outcomes as Array<WrittenTap | AppError>;
  });
}

const idempotencyConflict = () => new AppError('IDEMPOTENCY_CONFLICT', 'A different tap already uses this id; use a new id for a new tap');

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
 * One delivery row per device of each recipient. A device with a live socket
 * gets the ack window before the push channel takes over; a device without one
 * is due for push at once.
 */
async function insertDeliveries(
  trx: Trx,
  presence: Presence,
  ackWindowMs: number,
  taps: Map<string, TapRow>,
): Promise<Map<string, number>> {
  const recipients = [...new Set([...taps.values()].map((t) => t.recipient_id))];
  const devices = await trx.selectFrom('devices').select(['id', 'user_id']).where('user_id', 'in', recipients).execute();
  const devicesByUser = new Map<string, string[]>();
  for (const device of devices) {
    const list = devicesByUser.get(device.user_id) ?? [];
    list.push(device.id);
    devicesByUser.set(device.user_id, list);
  }
  const earliestDue = new Map<string, number>();
  const rows = [...taps.values()].flatMap((tap) =>
    (devicesByUser.get(tap.recipient_id) ?? []).map((deviceId) => {
      const online = presence.isDeviceOnline(deviceId);
      const due = online ? tap.created_at + ackWindowMs : tap.created_at;
      const current = earliestDue.get(tap.recipient_id);
      if (current === undefined || due < current) earliestDue.set(tap.recipient_id, due);
      return {
        tap_id: tap.id,
        device_id: deviceId,
        recipient_id: tap.recipient_id,
        status: 'pending' as const,
        channel: null,
        delivered_at: null,
        seen_at: null,
        push_state: 'waiting' as const,
        push_trigger: online ? ('no_ack' as const) : ('offline' as const),
        push_due_at: due,
        push_attempts: 0,
        push_last_reason: null,
        push_apns_id: null,
        push_sent_at: null,
      };
    }),
  );
  if (rows.length > 0) await trx.insertInto('tap_deliveries').values(rows).execute();
  return earliestDue;
}
