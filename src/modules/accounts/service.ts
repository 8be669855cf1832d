import type { Clock } from '../../clock.ts';
import type { DatabaseHandle } from '../../db/database.ts';
import { appendEntries, lockLogs, tapIdsOf } from '../../delivery/log-repo.ts';
import { deleteTaps } from '../../delivery/taps-repo.ts';
import { AppError } from '../../errors.ts';
import type { EventBus } from '../../realtime/events.ts';
import type { DeviceService } from '../devices/service.ts';
import { pairingsOf, partnerOf } from '../pairing/repo.ts';
import { pairingEnded, type PairingService } from '../pairing/service.ts';

interface Deps {
  database: DatabaseHandle;
  clock: Clock;
  bus: EventBus;
  devices: DeviceService;
  pairing: PairingService;
}

export class AccountService {
  readonly #deps: Deps;

  constructor(deps: Deps) {
    this.#deps = deps;
  }

  async me(principal: { userId: string; deviceId: string }) {
    const user = await this.#deps.database.db.selectFrom('users').selectAll().where('id', '=', principal.userId).executeTakeFirst();
    // Only a request racing its own account deletion gets here: it is signed out.
    if (!user) throw new AppError('INVALID_TOKEN', 'This account no longer exists');
    const [devices, pairings] = await Promise.all([
      this.#deps.devices.list(principal.userId, principal.deviceId),
      this.#deps.pairing.list(principal.userId),
    ]);
    return {
      user: { id: user.id, displayName: user.display_name, createdAt: new Date(user.created_at).toISOString() },
      devices,
      pairings,
    };
  }

  async setDisplayName(userId: string, displayName: string | null): Promise<void> {
    const name = displayName?.trim() || null;
    await this.#deps.database.db.updateTable('users').set({ display_name: name }).where('id', '=', userId).execute();
  }

  /**
   * Deletes the account and everything that belongs to it (devices, tokens,
   * pairings, codes, its log, taps both ways and their delivery records) in
   * one transaction. Live sockets close, and each partner's log records the
   * end of the pairing.
   */
  async delete(userId: string): Promise<void> {
    const { database } = this.#deps;
    const ended = await database.transaction(async (trx) => {
      const partners = (await pairingsOf(trx, userId)).map((row) => partnerOf(row, userId));
      const present = await lockLogs(trx, database.dialect, [userId, ...partners]);
      if (!present.has(userId)) return [];
      // Read again under the locks: a pairing made meanwhile is seen now, and no new one can start.
      const pairings = await pairingsOf(trx, userId);
      const unlocked = pairings.map((row) => partnerOf(row, userId)).filter((id) => !present.has(id));
      if (unlocked.length > 0) await lockLogs(trx, database.dialect, unlocked);
      const now = this.#deps.clock.now();
      const entries = await appendEntries(
        trx,
        pairings.flatMap((row) => pairingEnded(row, 'account_deleted', now).filter((entry) => entry.user_id !== userId)),
      );
      // Taps have no foreign key to users (it would cost an index on each side): delete them through the log.
      await deleteTaps(trx, await tapIdsOf(trx, userId));
      await trx.deleteFrom('users').where('id', '=', userId).execute();
      return entries;
    });
    this.#deps.devices.forgetUser(userId);
    this.#deps.bus.publish(userId, { type: 'user.deleted' });
    this.#deps.bus.broadcast({ type: 'user.deleted', userId });
    this.#deps.pairing.publishEnded(ended);
  }
}
