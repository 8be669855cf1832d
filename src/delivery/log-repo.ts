import { sql } from 'kysely';
import type { DialectName } from '../db/dialect.ts';
import type { Executor, LogEntryKind, LogEntryRow, TapRow, Trx } from '../db/schema.ts';

/**
 * The delivery log's storage (docs/delivery.md#the-log). Each user has one
 * log; `users.log_head` is its newest position, and positions are handed out
 * by incrementing it inside the writing transaction.
 *
 * Ordering without a global lock: on PostgreSQL the increment takes the
 * user's row lock until commit, so a second writer for the same user waits
 * and gets the next position only after the first one's entries are visible.
 * Positions of one user therefore become visible in order, with no holes,
 * and writers for different users never wait for each other. SQLite has one
 * writer, so the same holds trivially.
 *
 * Lock order (it keeps PostgreSQL free of deadlocks): a transaction that
 * appends to logs locks all those users first, in id order (`lockLogs`), and
 * only then touches other rows.
 */
export type NewEntry = Omit<LogEntryRow, 'pos'>;

/** A log entry with the tap it is about, when it is about a tap that still exists. */
export interface StoredEntry extends LogEntryRow {
  tap: TapRow | null;
}

/**
 * Locks the logs of these users, in id order, for the rest of the transaction
 * (a no-op on SQLite, whose transactions are serial). Returns the users that
 * exist: a user deleted meanwhile has no log to append to.
 */
export async function lockLogs(trx: Trx, dialect: DialectName, userIds: Iterable<string>): Promise<Set<string>> {
  const ids = [...new Set(userIds)].sort();
  if (ids.length === 0) return new Set();
  let query = trx.selectFrom('users').select('id').where('id', 'in', ids).orderBy('id');
  if (dialect === 'postgres') query = query.forUpdate();
  const rows = await query.execute();
  return new Set(rows.map((row) => row.id));
}

/**
 * Appends entries to their users' logs, in the order given per user, and
 * returns them with their positions. The users must have been locked with
 * `lockLogs` in this transaction, and must exist.
 */
export async function appendEntries(trx: Trx, entries: NewEntry[]): Promise<LogEntryRow[]> {
  if (entries.length === 0) return [];
  const counts = new Map<string, number>();
  for (const entry of entries) counts.set(entry.user_id, (counts.get(entry.user_id) ?? 0) + 1);
  const ids = [...counts.keys()].sort();
  // One statement for every user; the casts give PostgreSQL the parameters' type.
  const increments = sql.join(
    ids.map((id) => sql`when ${id} then cast(${counts.get(id)!} as bigint)`),
    sql` `,
  );
  const heads = await trx
    .updateTable('users')
    .set({ log_head: sql<number>`log_head + case id ${increments} else cast(0 as bigint) end` })
    .where('id', 'in', ids)
    .returning(['id', 'log_head'])
    .execute();
  const next = new Map(heads.map((head) => [head.id, head.log_head - counts.get(head.id)! + 1]));
  const stored = entries.map((entry) => {
    const pos = next.get(entry.user_id);
    if (pos === undefined) throw new Error(`no log for user ${entry.user_id}: lock and check it first`);
    next.set(entry.user_id, pos + 1);
    return { ...entry, pos };
  });
  await trx.insertInto('log_entries').values(stored).execute();
  return stored;
}

/** The newest position of a user's log (0 when empty or unknown). */
export async function logHead(db: Executor, userId: string): Promise<number> {
  const row = await db.selectFrom('users').select('log_head').where('id', '=', userId).executeTakeFirst();
  return row?.log_head ?? 0;
}

/** The newest positions of these users' logs (absent: unknown user). */
export async function logHeads(db: Executor, userIds: string[]): Promise<Map<string, number>> {
  if (userIds.length === 0) return new Map();
  const rows = await db.selectFrom('users').select(['id', 'log_head']).where('id', 'in', userIds).execute();
  return new Map(rows.map((row) => [row.id, row.log_head]));
}

/** Entries after `after`, oldest first, with their taps (one read). */
export async function readEntries(db: Executor, userId: string, after: number, limit: number): Promise<StoredEntry[]> {
  const rows = await db
    .selectFrom('log_entries as e')
    .leftJoin('taps as t', (join) => join.on(sql<boolean>`e.kind = 'tap'`).onRef('t.id', '=', 'e.subject'))
    .select([
      'e.user_id',
      'e.pos',
      'e.kind',
      'e.subject',
      'e.peer_id',
      'e.detail',
      'e.at',
      't.seq',
      't.id',
      't.sender_id',
      't.sender_device_id',
      't.recipient_id',
      't.sender_pos',
      't.recipient_pos',
      't.intensity',
      't.pattern',
      't.created_at',
      't.delivered_at',
      't.seen_at',
    ])
    .where('e.user_id', '=', userId)
    .where('e.pos', '>', after)
    .orderBy('e.pos')
    .limit(limit)
    .execute();
  return rows.map((r) => ({
    user_id: r.user_id,
    pos: r.pos,
    kind: r.kind,
    subject: r.subject,
    peer_id: r.peer_id,
    detail: r.detail,
    at: r.at,
    tap:
      r.seq === null
        ? null
        : {
            seq: r.seq,
            id: r.id!,
            sender_id: r.sender_id!,
            sender_device_id: r.sender_device_id,
            recipient_id: r.recipient_id!,
            sender_pos: r.sender_pos!,
            recipient_pos: r.recipient_pos!,
            intensity: r.intensity!,
            pattern: r.pattern!,
            created_at: r.created_at!,
            delivered_at: r.delivered_at,
            seen_at: r.seen_at,
          },
  }));
}

/** A user's taps, both directions, from the log: newest first paging back, or oldest first from `after`. */
export async function readTapEntries(
  db: Executor,
  query: { userId: string; withUser?: string; before?: number; after?: number; limit: number },
): Promise<Array<{ pos: number; tap: TapRow }>> {
  const ascending = query.after !== undefined;
  let q = db
    .selectFrom('log_entries as e')
    .innerJoin('taps as t', 't.id', 'e.subject')
    .selectAll('t')
    .select('e.pos')
    .where('e.user_id', '=', query.userId)
    .where('e.kind', '=', 'tap' satisfies LogEntryKind);
  if (query.withUser !== undefined) q = q.where('e.peer_id', '=', query.withUser);
  if (query.after !== undefined) q = q.where('e.pos', '>', query.after);
  if (query.before !== undefined) q = q.where('e.pos', '<', query.before);
  const rows = await q
    .orderBy('e.pos', ascending ? 'asc' : 'desc')
    .limit(query.limit)
    .execute();
  return rows.map(({ pos, ...tap }) => ({ pos, tap }));
}

/** The taps a user sent or received, by id (for deleting an account's taps with it). */
export async function tapIdsOf(db: Executor, userId: string): Promise<string[]> {
  const rows = await db
    .selectFrom('log_entries')
    .select('subject')
    .where('user_id', '=', userId)
    .where('kind', '=', 'tap' satisfies LogEntryKind)
    .execute();
  return rows.map((row) => row.subject);
}
