import type { Clock } from '../../clock.ts';
import type { Config } from '../../config.ts';
import type { DatabaseHandle } from '../../db/database.ts';
import type { Executor, LogEntryRow, PairingRow } from '../../db/schema.ts';
import { appendEntries, lockLogs } from '../../delivery/log-repo.ts';
import type { PairingEndReason } from '../../delivery/messages.ts';
import type { DeliveryService } from '../../delivery/service.ts';
import { AppError, notFound } from '../../errors.ts';
import { isUniqueViolation } from '../../db/errors.ts';
import { hmacSha256, uuidv7 } from '../../ids.ts';
import type { Presence } from '../../realtime/presence.ts';
import { displayNames } from '../accounts/repo.ts';
import { formatCode, generateCode, normalizeCode } from './codes.ts';
import { orderedCouple, pairingsOf, partnerIdsOf, partnerOf } from './repo.ts';
import type { PairingCodeStatus, PairingView } from './schemas.ts';

interface Deps {
  database: DatabaseHandle;
  clock: Clock;
  delivery: DeliveryService;
  presence: Presence;
  config: Config['pairing'];
  /** Keys the code hashes: 40 bits are too few to store under a plain hash. */
  codePepper: string;
}

type People = { names: Map<string, string | null>; online: Set<string> };

/** Expired and used codes stay this long (so the creator sees "expired"/"used"), then the purge removes them. */
export const CODE_RETENTION_MS = 60 * 60 * 1000;

/** The entries a pairing's end appends: one in each partner's log. */
export const pairingEnded = (row: PairingRow, reason: PairingEndReason, at: number) =>
  [
    [row.user_a, row.user_b],
    [row.user_b, row.user_a],
  ].map(([user, peer]) => ({ user_id: user!, kind: 'pairing.deleted' as const, subject: row.id, peer_id: peer!, detail: reason, at }));

/**
 * Two users become partners through a short code one shows and the other
 * types. Redemption is one transaction: exactly one of two racing redeemers
 * gets the pairing.
 */
export class PairingService {
  readonly #deps: Deps;

  constructor(deps: Deps) {
    this.#deps = deps;
  }

  async createCode(userId: string): Promise<{ code: string; expiresAt: number }> {
    const now = this.#deps.clock.now();
    const expiresAt = now + this.#deps.config.codeTtlSeconds * 1000;
    // 2^40 codes: a collision with a live code is astronomically rare, but the
    // unique index would reject it, so draw again rather than fail.
    for (let attempt = 0; ; attempt++) {
      const code = generateCode();
      try {
        await this.#deps.database.db
          .insertInto('pairing_codes')
          .values({
            id: uuidv7(now),
            code_hash: this.#hash(code),
            creator_id: userId,
            created_at: now,
            expires_at: expiresAt,
            used_at: null,
            pairing_id: null,
          })
          .execute();
        return { code: formatCode(code), expiresAt };
      } catch (error) {
        if (attempt >= 3 || !isUniqueViolation(error)) throw error;
      }
    }
  }

  async codeStatus(userId: string, input: string): Promise<PairingCodeStatus> {
    const row = await this.#findOwnCode(userId, input);
    const now = this.#deps.clock.now();
    if (row.used_at !== null) {
      const pairing = row.pairing_id ? await this.#pairingFor(this.#deps.database.db, userId, row.pairing_id) : undefined;
      return { status: 'used', expiresAt: new Date(row.expires_at).toISOString(), ...(pairing ? { pairing } : {}) };
    }
    return { status: row.expires_at <= now ? 'expired' : 'pending', expiresAt: new Date(row.expires_at).toISOString() };
  }

  async cancelCode(userId: string, input: string): Promise<void> {
    const row = await this.#findOwnCode(userId, input);
    await this.#deps.database.db.deleteFrom('pairing_codes').where('id', '=', row.id).execute();
  }

  async redeem(userId: string, input: string): Promise<PairingView> {
    const codeHash = this.#hash(normalizeCode(input));
    const now = this.#deps.clock.now();
    const { database } = this.#deps;
    const { pairing, entries } = await database.transaction(async (trx) => {
      const code = await trx.selectFrom('pairing_codes').selectAll().where('code_hash', '=', codeHash).executeTakeFirst();
      if (!code) throw new AppError('PAIRING_CODE_NOT_FOUND', 'No pending pairing code matches; check it and try again');
      if (code.used_at !== null) throw new AppError('PAIRING_CODE_USED', 'This code was already used; ask for a new one');
      if (code.expires_at <= now) throw new AppError('PAIRING_CODE_EXPIRED', 'This code has expired; ask for a new one');
      if (code.creator_id === userId)
        throw new AppError('CANNOT_PAIR_WITH_SELF', 'This is your own code: the other person types it on their device');

      // Both logs are appended to; their locks also serialise the partner caps below.
      const [userA, userB] = orderedCouple(code.creator_id, userId);
      const present = await lockLogs(trx, database.dialect, [userA, userB]);
      if (present.size < 2) throw new AppError('PAIRING_CODE_NOT_FOUND', 'No pending pairing code matches; check it and try again');
      const existing = await trx
        .selectFrom('pairings')
        .select('id')
        .where('user_a', '=', userA)
        .where('user_b', '=', userB)
        .executeTakeFirst();
      if (existing) throw new AppError('ALREADY_PAIRED', 'You are already paired with this person');
      await this.#checkCap(trx, [userA, userB]);

      const claimed = await trx
        .updateTable('pairing_codes')
        .set({ used_at: now })
        .where('id', '=', code.id)
        .where('used_at', 'is', null)
        .executeTakeFirst();
      if (claimed.numUpdatedRows !== 1n) throw new AppError('PAIRING_CODE_USED', 'This code was just used by someone else');

      const row: PairingRow = { id: uuidv7(now), user_a: userA, user_b: userB, created_at: now };
      try {
        await trx.insertInto('pairings').values(row).execute();
      } catch (error) {
        if (isUniqueViolation(error)) throw new AppError('ALREADY_PAIRED', 'You are already paired with this person');
        throw error;
      }
      await trx.updateTable('pairing_codes').set({ pairing_id: row.id }).where('id', '=', code.id).execute();
      const created = await appendEntries(trx, [
        { user_id: userA, kind: 'pairing.created', subject: row.id, peer_id: userB, detail: null, at: now },
        { user_id: userB, kind: 'pairing.created', subject: row.id, peer_id: userA, detail: null, at: now },
      ]);
      return { pairing: row, entries: created };
    });
    const people = await this.#people(database.db, [pairing.user_a, pairing.user_b]);
    this.#deps.delivery.publish(entries.map((row) => ({ row, context: { partner: this.#partner(row.peer_id, people) } })));
    return this.#view(pairing, userId, people);
  }

  async list(userId: string): Promise<PairingView[]> {
    const rows = await pairingsOf(this.#deps.database.db, userId);
    const people = await this.#people(
      this.#deps.database.db,
      rows.map((row) => partnerOf(row, userId)),
    );
    return rows.map((row) => this.#view(row, userId, people));
  }

  partnerIds(userId: string): Promise<string[]> {
    return partnerIdsOf(this.#deps.database.db, userId);
  }

  /** Either partner may end the pairing; the history of taps stays with both. */
  async remove(userId: string, pairingId: string): Promise<void> {
    const { database } = this.#deps;
    const entries = await database.transaction(async (trx) => {
      const row = await trx.selectFrom('pairings').selectAll().where('id', '=', pairingId).executeTakeFirst();
      if (!row || (row.user_a !== userId && row.user_b !== userId)) throw notFound('Pairing');
      await lockLogs(trx, database.dialect, [row.user_a, row.user_b]);
      const deleted = await trx.deleteFrom('pairings').where('id', '=', pairingId).executeTakeFirst();
      // The other partner (or an account deletion) ended it a moment ago.
      if (deleted.numDeletedRows === 0n) throw notFound('Pairing');
      return appendEntries(trx, pairingEnded(row, 'unpaired', this.#deps.clock.now()));
    });
    this.publishEnded(entries);
  }

  /** Announces the end of pairings (unpaired, or an account deleted) to the partners' live devices. */
  publishEnded(entries: LogEntryRow[]): void {
    this.#deps.delivery.publish(entries.map((row) => ({ row })));
  }

  /** Deletes codes whose lifetime ended more than an hour ago. */
  async purgeExpiredCodes(): Promise<number> {
    const cutoff = this.#deps.clock.now() - CODE_RETENTION_MS;
    const result = await this.#deps.database.db.deleteFrom('pairing_codes').where('expires_at', '<', cutoff).executeTakeFirst();
    return Number(result.numDeletedRows);
  }

  async #checkCap(db: Executor, users: string[]): Promise<void> {
    const max = this.#deps.config.maxPairingsPerUser;
    for (const user of users) {
      const { n } = await db
        .selectFrom('pairings')
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .where((eb) => eb.or([eb('user_a', '=', user), eb('user_b', '=', user)]))
        .executeTakeFirstOrThrow();
      if (Number(n) >= max) {
        throw new AppError('PAIRING_LIMIT_REACHED', `A person can have at most ${max} partners; unpair someone first`);
      }
    }
  }

  async #findOwnCode(userId: string, input: string) {
    const row = await this.#deps.database.db
      .selectFrom('pairing_codes')
      .selectAll()
      .where('code_hash', '=', this.#hash(normalizeCode(input)))
      .executeTakeFirst();
    // Someone else's code is indistinguishable from no code.
    if (!row || row.creator_id !== userId) throw new AppError('PAIRING_CODE_NOT_FOUND', 'You have no pairing code like this');
    return row;
  }

  async #pairingFor(db: Executor, userId: string, pairingId: string): Promise<PairingView | undefined> {
    const row = await db.selectFrom('pairings').selectAll().where('id', '=', pairingId).executeTakeFirst();
    if (!row) return undefined;
    return this.#view(row, userId, await this.#people(db, [partnerOf(row, userId)]));
  }

  /** What a pairing view shows of these users: their names, and whether they are online. */
  async #people(db: Executor, userIds: string[]): Promise<People> {
    const [names, online] = await Promise.all([displayNames(db, userIds), this.#deps.presence.onlineUsers(userIds)]);
    return { names, online };
  }

  #partner(userId: string, people: People): PairingView['partner'] {
    return { userId, displayName: people.names.get(userId) ?? null, online: people.online.has(userId) };
  }

  #view(row: PairingRow, viewer: string, people: People): PairingView {
    return { id: row.id, partner: this.#partner(partnerOf(row, viewer), people), createdAt: new Date(row.created_at).toISOString() };
  }

  #hash(code: string): string {
    return hmacSha256(this.#deps.codePepper, code);
  }
}
