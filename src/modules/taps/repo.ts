import type { Executor, TapRow } from '../../db/schema.ts';

export interface TapQuery {
  userId: string;
  withUser?: string;
  /** Exclusive bounds on seq. */
  before?: number;
  after?: number;
  limit: number;
}

/**
 * A user's taps, both directions. Sent and received taps are read by two
 * indexed range scans ((sender_id, seq) and (recipient_id, seq)) and merged,
 * which stays cheap however many taps other couples exchange.
 * Ascending when `after` is given (catching up), descending otherwise.
 */
export async function findTaps(db: Executor, query: TapQuery): Promise<TapRow[]> {
  const ascending = query.after !== undefined;
  const side = (mine: 'sender_id' | 'recipient_id', theirs: 'sender_id' | 'recipient_id') => {
    let q = db.selectFrom('taps').selectAll().where(mine, '=', query.userId);
    if (query.withUser !== undefined) q = q.where(theirs, '=', query.withUser);
    if (query.after !== undefined) q = q.where('seq', '>', query.after);
    if (query.before !== undefined) q = q.where('seq', '<', query.before);
    return q
      .orderBy('seq', ascending ? 'asc' : 'desc')
      .limit(query.limit)
      .execute();
  };
  const [sent, received] = await Promise.all([side('sender_id', 'recipient_id'), side('recipient_id', 'sender_id')]);
  const merged = [...sent, ...received];
  merged.sort((a, b) => (ascending ? a.seq - b.seq : b.seq - a.seq));
  return merged.slice(0, query.limit);
}

/** The newest cursor among the user's taps (0 when none). */
export async function latestSeq(db: Executor, userId: string): Promise<number> {
  const [sent, received] = await Promise.all(
    (['sender_id', 'recipient_id'] as const).map((column) =>
      db.selectFrom('taps').select('seq').where(column, '=', userId).orderBy('seq', 'desc').limit(1).executeTakeFirst(),
    ),
  );
  return Math.max(sent?.seq ?? 0, received?.seq ?? 0);
}

export function findTap(db: Executor, tapId: string): Promise<TapRow | undefined> {
  return db.selectFrom('taps').selectAll().where('id', '=', tapId).executeTakeFirst();
}

export function findDeliveries(db: Executor, tapSeq: number) {
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
