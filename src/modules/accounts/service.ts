import { AppError } from '../../errors.ts';
import type { DatabaseHandle } from '../../db/database.ts';
import type { EventBus } from '../../realtime/events.ts';
import type { DeviceService } from '../devices/service.ts';
import type { PairingService } from '../pairing/service.ts';

interface Deps {
  database: DatabaseHandle;
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
   * pairings, codes, taps both ways, delivery records) in one transaction; the
   * foreign keys cascade. Live sockets close, and partners see the pairing go.
   */
  async delete(userId: string): Promise<void> {
    const { db } = this.#deps.database;
    const pairings = await db.transaction().execute(async (trx) => {
      const rows = await this.#deps.pairing.rowsOf(trx, userId);
      await trx.deleteFrom('users').where('id', '=', userId).execute();
      return rows;
    });
    this.#deps.devices.forgetUser(userId);
    this.#deps.bus.publish(userId, { type: 'user.deleted' });
    for (const row of pairings) this.#deps.pairing.publishRemoved(row);
  }
}
