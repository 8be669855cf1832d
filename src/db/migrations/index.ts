import type { Migration } from 'kysely/migration';
import type { DialectName } from '../dialect.ts';
import { initialMigration } from './001-initial.ts';
import { deliveryLogMigration } from './002-delivery-log.ts';
import { pushTokenMovesMigration } from './003-push-token-moves.ts';

/** Versioned migrations, applied in key order at start. Never edit one that has shipped: add the next. */
export function migrations(dialect: DialectName): Record<string, Migration> {
  return {
    '001-initial': initialMigration(dialect),
    '002-delivery-log': deliveryLogMigration(dialect),
    '003-push-token-moves': pushTokenMovesMigration,
  };
}
