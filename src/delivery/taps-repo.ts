import type { Executor, TapRow, Trx } from '../db/schema.ts';
import type { AckStatus, TapDraft } from './write-batch.ts';

/** Taps by id (unknown ids are absent). */
export async function tapsById(db: Executor, ids: string[]): Promise<Map<string, TapRow>> {
  const unique = [...new Set(ids)];
  if (unique.length === 0) return new Map();
  const rows = await db.selectFrom('taps').selectAll().where('id', 'in', unique).execute();
  return new Map(rows.map((row) => [row.id, row]));
}

export function findTap(db: Executor, tapId: string): Promise<TapRow | undefined> {
  return db.selectFrom('taps').selectAll().where('id', '=', tapId).executeTakeFirst();
}

export async function insertTaps(
  trx: Trx,
  taps: Array<{ draft: TapDraft; senderPos: number; recipientPos: number }>,
): Promise<Map<string, TapRow>> {
  const inserted = await trx
    .insertInto('taps')
    .values(
      taps.map(({ draft: d, senderPos, recipientPos }) => ({
        id: d.id,
        sender_id: d.senderId,
        sender_device_id: d.senderDeviceId,
        recipient_id: d.recipientId,
        sender_pos: senderPos,
        recipient_pos: recipientPos,
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

/** The tap as a whole is delivered (a device of the recipient has it) or seen; seen implies delivered. */
export async function advanceTap(trx: Trx, tapId: string, status: AckStatus, at: number): Promise<void> {
  await trx
    .updateTable('taps')
    .set((eb) => ({ delivered_at: eb.fn.coalesce('delivered_at', eb.val(at)), ...(status === 'seen' ? { seen_at: at } : {}) }))
    .where('id', '=', tapId)
    .execute();
}

/** Deletes taps (their delivery rows go with them). */
export async function deleteTaps(trx: Trx, ids: string[]): Promise<void> {
  // In slices: a parameter list has limits (SQLite: 32,766).
  for (let i = 0; i < ids.length; i += 1000)
    await trx
      .deleteFrom('taps')
      .where('id', 'in', ids.slice(i, i + 1000))
      .execute();
}
