import type { Trx } from '../db/schema.ts';
import { latestSeq } from '../modules/taps/repo.ts';

export interface ConnectionSnapshot {
  /** The newest cursor among the user's taps. */
  cursor: number;
  partnerIds: string[];
}

/**
 * What a connection needs before it says hello, in one read: at tens of
 * thousands of reconnecting phones, one trip to the database each instead of three.
 */
export async function connectionSnapshot(trx: Trx, input: { userId: string }): Promise<ConnectionSnapshot> {
  const cursor = await latestSeq(trx, input.userId);
  const pairings = await trx
    .selectFrom('pairings')
    .select(['user_a', 'user_b'])
    .where((eb) => eb.or([eb('user_a', '=', input.userId), eb('user_b', '=', input.userId)]))
    .execute();
  return { cursor, partnerIds: pairings.map((p) => (p.user_a === input.userId ? p.user_b : p.user_a)) };
}
