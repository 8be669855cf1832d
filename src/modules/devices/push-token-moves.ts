import type { Executor } from '../../db/schema.ts';

/**
 * The push_token_moves table (migration 003), kept beside the feature that
 * writes it: one row each time a device's push token was taken by another
 * device that registered the same token.
 */
export interface PushTokenMovesTable {
  id: string;
  /** The device the token was taken from. */
  from_device_id: string;
  /** The device that registered it (null once that device is gone). */
  to_device_id: string | null;
  /** 1 when both devices belong to the same user, 0 otherwise. */
  same_user: number;
  moved_at: number;
}

const withMoves = (db: Executor) => db.$extendTables<{ push_token_moves: PushTokenMovesTable }>();

export async function recordMoves(db: Executor, rows: PushTokenMovesTable[]): Promise<void> {
  if (rows.length > 0) await withMoves(db).insertInto('push_token_moves').values(rows).execute();
}

/** When each device's token was last taken away (devices never affected are absent). */
export async function lastMoves(db: Executor, deviceIds: string[]): Promise<Map<string, number>> {
  if (deviceIds.length === 0) return new Map();
  const rows = await withMoves(db)
    .selectFrom('push_token_moves')
    .select(['from_device_id', (eb) => eb.fn.max('moved_at').as('moved_at')])
    .where('from_device_id', 'in', deviceIds)
    .groupBy('from_device_id')
    .execute();
  return new Map(rows.map((row) => [row.from_device_id, Number(row.moved_at)]));
}
