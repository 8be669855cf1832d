import type { Kysely } from 'kysely';
import type { Migration } from 'kysely/migration';

/**
 * A record each time a push token is taken off one device by another that
 * registered the same token (see DeviceService.setPushToken): the device it
 * was taken from can see when, and an operator can see where it went.
 */
export const pushTokenMovesMigration: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema
      .createTable('push_token_moves')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('from_device_id', 'text', (c) => c.notNull().references('devices.id').onDelete('cascade'))
      .addColumn('to_device_id', 'text', (c) => c.references('devices.id').onDelete('set null'))
      .addColumn('same_user', 'integer', (c) => c.notNull())
      .addColumn('moved_at', 'bigint', (c) => c.notNull())
      .execute();
    await db.schema.createIndex('push_token_moves_from_device').on('push_token_moves').columns(['from_device_id', 'moved_at']).execute();
    await db.schema.createIndex('push_token_moves_to_device').on('push_token_moves').column('to_device_id').execute();
  },
  async down(db: Kysely<unknown>) {
    await db.schema.dropTable('push_token_moves').execute();
  },
};
