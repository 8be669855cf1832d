import type { Executor, PairingRow } from '../../db/schema.ts';

/** The two partners of a couple in stored order (pairings keep user_a < user_b). */
export const orderedCouple = (a: string, b: string): [string, string] => (a < b ? [a, b] : [b, a]);
export const coupleKey = (a: string, b: string): string => orderedCouple(a, b).join('|');

export const partnerOf = (row: Pick<PairingRow, 'user_a' | 'user_b'>, userId: string): string =>
  row.user_a === userId ? row.user_b : row.user_a;

/** Which of these couples are paired, as coupleKey values. */
export async function pairedCouples(db: Executor, couples: Array<[string, string]>): Promise<Set<string>> {
  const unique = new Map(couples.map(([a, b]) => [coupleKey(a, b), orderedCouple(a, b)]));
  if (unique.size === 0) return new Set();
  const rows = await db
    .selectFrom('pairings')
    .select(['user_a', 'user_b'])
    .where((eb) => eb.or([...unique.values()].map(([a, b]) => eb.and([eb('user_a', '=', a), eb('user_b', '=', b)]))))
    .execute();
  return new Set(rows.map((row) => `${row.user_a}|${row.user_b}`));
}

/** A user's pairings, oldest first. */
export function pairingsOf(db: Executor, userId: string): Promise<PairingRow[]> {
  return db
    .selectFrom('pairings')
    .selectAll()
    .where((eb) => eb.or([eb('user_a', '=', userId), eb('user_b', '=', userId)]))
    .orderBy('created_at')
    .orderBy('id')
    .execute();
}

export async function partnerIdsOf(db: Executor, userId: string): Promise<string[]> {
  return (await pairingsOf(db, userId)).map((row) => partnerOf(row, userId));
}
