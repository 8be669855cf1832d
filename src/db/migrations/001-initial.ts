import { sql, type Kysely } from 'kysely';
import type { Migration } from 'kysely/migration';
import type { DialectName } from '../dialect.ts';

/** Accounts, devices, tokens, pairing and taps with their per-device delivery state. */
export function initialMigration(dialect: DialectName): Migration {
  return {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('users')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('display_name', 'text')
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .execute();

      await db.schema
        .createTable('devices')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('user_id', 'text', (c) => c.notNull().references('users.id').onDelete('cascade'))
        .addColumn('platform', 'text', (c) => c.notNull())
        .addColumn('name', 'text')
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('push_token', 'text')
        .addColumn('push_environment', 'text')
        .addColumn('push_token_updated_at', 'bigint')
        .addColumn('push_token_invalid_at', 'bigint')
        .addColumn('push_token_invalid_reason', 'text')
        .execute();
      await db.schema.createIndex('devices_user_id').on('devices').column('user_id').execute();
      await db.schema.createIndex('devices_push_token').on('devices').column('push_token').execute();

      await db.schema
        .createTable('refresh_tokens')
        .addColumn('token_hash', 'text', (c) => c.primaryKey())
        .addColumn('device_id', 'text', (c) => c.notNull().references('devices.id').onDelete('cascade'))
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('expires_at', 'bigint', (c) => c.notNull())
        .addColumn('rotated_at', 'bigint')
        .addColumn('successor_hash', 'text')
        .execute();
      await db.schema.createIndex('refresh_tokens_device_id').on('refresh_tokens').column('device_id').execute();
      await db.schema.createIndex('refresh_tokens_expires_at').on('refresh_tokens').column('expires_at').execute();

      await db.schema
        .createTable('pairings')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('user_a', 'text', (c) => c.notNull().references('users.id').onDelete('cascade'))
        .addColumn('user_b', 'text', (c) => c.notNull().references('users.id').onDelete('cascade'))
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addUniqueConstraint('pairings_couple', ['user_a', 'user_b'])
        .addCheckConstraint('pairings_ordered', sql`user_a < user_b`)
        .execute();
      await db.schema.createIndex('pairings_user_b').on('pairings').column('user_b').execute();

      await db.schema
        .createTable('pairing_codes')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('code_hash', 'text', (c) => c.notNull().unique())
        .addColumn('creator_id', 'text', (c) => c.notNull().references('users.id').onDelete('cascade'))
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('expires_at', 'bigint', (c) => c.notNull())
        .addColumn('used_at', 'bigint')
        .addColumn('pairing_id', 'text', (c) => c.references('pairings.id').onDelete('set null'))
        .execute();
      await db.schema.createIndex('pairing_codes_creator_id').on('pairing_codes').column('creator_id').execute();
      await db.schema.createIndex('pairing_codes_expires_at').on('pairing_codes').column('expires_at').execute();

      // The cursor must never be reused, even after the newest taps are deleted
      // with their account: SQLite needs AUTOINCREMENT for that, PostgreSQL's
      // identity columns never go back.
      await db.schema
        .createTable('taps')
        .addColumn('seq', dialect === 'sqlite' ? 'integer' : 'bigint', (c) =>
          dialect === 'sqlite' ? c.primaryKey().autoIncrement() : c.primaryKey().generatedAlwaysAsIdentity(),
        )
        .addColumn('id', 'text', (c) => c.notNull().unique())
        .addColumn('sender_id', 'text', (c) => c.notNull().references('users.id').onDelete('cascade'))
        .addColumn('sender_device_id', 'text', (c) => c.references('devices.id').onDelete('set null'))
        .addColumn('recipient_id', 'text', (c) => c.notNull().references('users.id').onDelete('cascade'))
        .addColumn('intensity', 'text', (c) => c.notNull())
        .addColumn('pattern', 'text', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('delivered_at', 'bigint')
        .addColumn('seen_at', 'bigint')
        .execute();
      await db.schema.createIndex('taps_sender_seq').on('taps').columns(['sender_id', 'seq']).execute();
      await db.schema.createIndex('taps_recipient_seq').on('taps').columns(['recipient_id', 'seq']).execute();

      // Keyed by the tap's cursor, which only grows: delivery rows are
      // appended at the end of the index instead of scattered by a random id.
      // No foreign key to devices: a removed device's outstanding hand-offs are
      // deleted with it (devices/service.ts), its settled history stays with the
      // tap, and an index by device on this hot table would cost every insert.
      await db.schema
        .createTable('tap_deliveries')
        .addColumn('tap_seq', dialect === 'sqlite' ? 'integer' : 'bigint', (c) => c.notNull().references('taps.seq').onDelete('cascade'))
        .addColumn('device_id', 'text', (c) => c.notNull())
        .addColumn('recipient_id', 'text', (c) => c.notNull())
        .addColumn('status', 'text', (c) => c.notNull())
        .addColumn('channel', 'text')
        .addColumn('delivered_at', 'bigint')
        .addColumn('seen_at', 'bigint')
        .addColumn('push_state', 'text', (c) => c.notNull())
        .addColumn('push_trigger', 'text', (c) => c.notNull())
        .addColumn('push_due_at', 'bigint')
        .addColumn('push_attempts', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('push_last_reason', 'text')
        .addColumn('push_apns_id', 'text')
        .addColumn('push_sent_at', 'bigint')
        .addPrimaryKeyConstraint('tap_deliveries_pk', ['tap_seq', 'device_id'])
        .execute();
      // Only hand-offs still to be pushed are indexed: the worker's scan stays small.
      await db.schema
        .createIndex('tap_deliveries_push_due')
        .on('tap_deliveries')
        .column('push_due_at')
        .where(sql.ref('push_state'), 'in', ['waiting', 'sending'])
        .execute();
    },
  };
}
