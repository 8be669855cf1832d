import type { Executor } from '../../db/schema.ts';

/** The devices of these users, with what delivering to them needs. */
export function devicesOfUsers(db: Executor, userIds: string[]) {
  return db
    .selectFrom('devices')
    .select(['id', 'user_id', 'platform', 'push_token', 'push_environment', 'push_token_invalid_at'])
    .where('user_id', 'in', userIds)
    .execute();
}

/** The user a device belongs to, or undefined when the device does not exist. */
export async function deviceOwner(db: Executor, deviceId: string): Promise<string | undefined> {
  const row = await db.selectFrom('devices').select('user_id').where('id', '=', deviceId).executeTakeFirst();
  return row?.user_id;
}
