import type { Executor } from '../../db/schema.ts';

/** Display names by user id (null when unset); unknown users are absent. */
export async function displayNames(db: Executor, userIds: Iterable<string>): Promise<Map<string, string | null>> {
  const ids = [...new Set(userIds)];
  if (ids.length === 0) return new Map();
  const rows = await db.selectFrom('users').select(['id', 'display_name']).where('id', 'in', ids).execute();
  return new Map(rows.map((row) => [row.id, row.display_name]));
}
