import type { Clock } from '../../clock.ts';
import { notFound } from '../../errors.ts';
import type { DatabaseHandle } from '../../db/database.ts';
import type { DeviceRow, Executor, Platform, PushEnvironment } from '../../db/schema.ts';
import { uuidv7 } from '../../ids.ts';
import { deleteOutstandingPushes } from '../../delivery/deliveries-repo.ts';
import { deviceOwner } from './repo.ts';
import type { DeviceRemovalReason, EventBus } from '../../realtime/events.ts';
import { lastMoves, recordMoves } from './push-token-moves.ts';
import type { DeviceView } from './schemas.ts';

const OWNERS_KEPT = 50_000;
const OWNER_TTL_MS = 60_000;

interface Deps {
  database: DatabaseHandle;
  clock: Clock;
  bus: EventBus;
}

export class DeviceService {
  readonly #deps: Deps;
  readonly #owners = new Map<string, { userId: string; at: number }>();
  /** Counts removals, so that an answer read before a removal is not remembered after it. */
  #removals = 0;

  constructor(deps: Deps) {
    this.#deps = deps;
  }

  async create(db: Executor, userId: string, device: { platform: Platform; name?: string }, now: number): Promise<string> {
    const id = uuidv7(now);
    await db
      .insertInto('devices')
      .values({
        id,
        user_id: userId,
        platform: device.platform,
        name: device.name ?? null,
        created_at: now,
        push_token: null,
        push_environment: null,
        push_token_updated_at: null,
        push_token_invalid_at: null,
        push_token_invalid_reason: null,
      })
      .execute();
    return id;
  }

  /**
   * The user a device belongs to, or undefined once it was removed. Asked on
   * every authenticated request, so answers are remembered; removing a device
   * (or its account) through this instance forgets it at once, and an answer
   * is at most OWNER_TTL_MS old, which bounds what another instance could miss.
   */
  async owner(deviceId: string): Promise<string | undefined> {
    const now = this.#deps.clock.now();
    const known = this.#owners.get(deviceId);
    if (known && now - known.at < OWNER_TTL_MS) return known.userId;
    const removals = this.#removals;
    const userId = await deviceOwner(this.#deps.database.db, deviceId);
    // A removal committed while we read may not be in what we read: answer, but do not remember it.
    if (userId === undefined || removals !== this.#removals) return userId;
    if (this.#owners.size >= OWNERS_KEPT) this.#owners.delete(this.#owners.keys().next().value as string);
    this.#owners.set(deviceId, { userId, at: now });
    return userId;
  }

  /** Forgets a device removed through another instance. */
  forget(deviceId: string): void {
    this.#removals++;
    this.#owners.delete(deviceId);
  }

  /** Whether the device exists and is the user's, asked of the database itself (no cache). */
  async exists(userId: string, deviceId: string): Promise<boolean> {
    const row = await this.#deps.database.db
      .selectFrom('devices')
      .select('id')
      .where('id', '=', deviceId)
      .where('user_id', '=', userId)
      .executeTakeFirst();
    return row !== undefined;
  }

  /** Forgets every device of a user whose account is gone. */
  forgetUser(userId: string): void {
    this.#removals++;
    for (const [deviceId, known] of this.#owners) if (known.userId === userId) this.#owners.delete(deviceId);
  }

  async list(userId: string, currentDeviceId: string): Promise<DeviceView[]> {
    const { db } = this.#deps.database;
    const rows = await db.selectFrom('devices').selectAll().where('user_id', '=', userId).orderBy('created_at').orderBy('id').execute();
    const moves = await lastMoves(
      db,
      rows.filter((row) => row.push_token === null).map((row) => row.id),
    );
    return rows.map((row) => toDeviceView(row, currentDeviceId, moves.get(row.id)));
  }

  /**
   * Removes a device with its tokens and delivery records; its live sockets
   * are closed through the bus. Another user's device is simply not found.
   */
  async remove(userId: string, deviceId: string, reason: DeviceRemovalReason): Promise<void> {
    const removed = await this.#deps.database.transaction(async (trx) => {
      const result = await trx.deleteFrom('devices').where('id', '=', deviceId).where('user_id', '=', userId).executeTakeFirst();
      if (result.numDeletedRows === 0n) return false;
      // Its pushes still to go (delivery rows carry no foreign key to devices, see the first migration).
      await deleteOutstandingPushes(trx, deviceId);
      return true;
    });
    if (!removed) throw notFound('Device');
    this.#removals++;
    this.#owners.delete(deviceId);
    this.#deps.bus.publish(userId, { type: 'device.removed', deviceId, reason });
    this.#deps.bus.broadcast({ type: 'device.removed', userId, deviceId });
  }

  /**
   * Registers the calling device's APNs token. A token belongs to one app
   * install: if another device row still holds it (a reinstall that registered
   * anew, often as a new anonymous user), it is taken from there so one phone
   * is never pushed twice, and the move is recorded so the device it was
   * taken from shows it (`pushTokenMovedAt`). docs/security.md says why the
   * move is allowed at all.
   */
  async setPushToken(deviceId: string, token: string, environment: PushEnvironment): Promise<void> {
    const now = this.#deps.clock.now();
    const normalized = token.toLowerCase();
    await this.#deps.database.db.transaction().execute(async (trx) => {
      const holders = await trx
        .selectFrom('devices')
        .select(['id', 'user_id'])
        .where('push_token', '=', normalized)
        .where('id', '!=', deviceId)
        .execute();
      if (holders.length > 0) {
        const me = await trx.selectFrom('devices').select('user_id').where('id', '=', deviceId).executeTakeFirst();
        await trx
          .updateTable('devices')
          .set({ push_token: null, push_environment: null, push_token_updated_at: now })
          .where('push_token', '=', normalized)
          .where('id', '!=', deviceId)
          .execute();
        const moved = holders.map((holder) => ({
          id: uuidv7(now),
          from_device_id: holder.id,
          to_device_id: me ? deviceId : null,
          same_user: holder.user_id === me?.user_id ? 1 : 0,
          moved_at: now,
        }));
        await recordMoves(trx, moved);
      }
      await trx
        .updateTable('devices')
        .set({
          push_token: normalized,
          push_environment: environment,
          push_token_updated_at: now,
          push_token_invalid_at: null,
          push_token_invalid_reason: null,
        })
        .where('id', '=', deviceId)
        .execute();
    });
  }

  async clearPushToken(deviceId: string): Promise<void> {
    await this.#deps.database.db
      .updateTable('devices')
      .set({
        push_token: null,
        push_environment: null,
        push_token_updated_at: this.#deps.clock.now(),
        push_token_invalid_at: null,
        push_token_invalid_reason: null,
      })
      .where('id', '=', deviceId)
      .execute();
  }
}

export function toDeviceView(row: DeviceRow, currentDeviceId: string, tokenMovedAt?: number): DeviceView {
  // A move matters only while the device has not registered a token since.
  const moved = row.push_token === null && tokenMovedAt !== undefined && tokenMovedAt >= (row.push_token_updated_at ?? 0);
  return {
    id: row.id,
    platform: row.platform,
    name: row.name,
    createdAt: new Date(row.created_at).toISOString(),
    current: row.id === currentDeviceId,
    push:
      row.push_token !== null && row.push_environment !== null
        ? { provider: 'apns', environment: row.push_environment, valid: row.push_token_invalid_at === null }
        : null,
    pushTokenMovedAt: moved ? new Date(tokenMovedAt).toISOString() : null,
  };
}
