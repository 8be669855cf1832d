import { Kysely, sql, type Dialect } from 'kysely';
import { Migrator } from 'kysely/migration';
import type { DatabaseConfig } from '../config.ts';
import type { Logger } from '../logger.ts';
import type { DialectName } from './dialect.ts';
import { migrations } from './migrations/index.ts';
import { postgresDialect } from './postgres.ts';
import type { Database, Db, Trx } from './schema.ts';
import { PROCEDURES, type ProcedureInput, type ProcedureName, type ProcedureOutput } from './procedures.ts';
import { SqliteWorkerDialect } from './sqlite-worker-dialect.ts';

/** Arbitrary constant naming the PostgreSQL advisory lock that orders tap cursors. */
const TAP_SEQUENCE_LOCK = 7_346_001;

export interface DatabaseHandle {
  readonly db: Db;
  readonly dialect: DialectName;
  /**
   * Serialises transactions that check-then-change state spanning users
   * (pairing caps). SQLite transactions are already serial.
   */
  lockUsers(trx: Trx, userIds: string[]): Promise<void>;
  /** Runs a procedure (procedures.ts) in one transaction, next to the data. */
  run<N extends ProcedureName>(procedure: N, input: ProcedureInput<N>): Promise<ProcedureOutput<N>>;
  ping(): Promise<void>;
  close(): Promise<void>;
}

export function openDatabase(config: DatabaseConfig): DatabaseHandle {
  let dialect: Dialect;
  let name: DialectName;
  let sqlite: SqliteWorkerDialect | undefined;
  if (config.kind === 'sqlite') {
    dialect = sqlite = new SqliteWorkerDialect(config.path);
    name = 'sqlite';
  } else {
    dialect = postgresDialect(config.url).dialect;
    name = 'postgres';
  }
  const db = new Kysely<Database>({ dialect });
  return {
    db,
    dialect: name,
    async lockUsers(trx, userIds) {
      if (name === 'postgres') {
        await trx.selectFrom('users').select('id').where('id', 'in', userIds).orderBy('id').forUpdate().execute();
      }
    },
    async run(procedure, input) {
      const { run, insertsTaps } = PROCEDURES[procedure] as {
        run: (trx: Trx, input: unknown) => Promise<ProcedureOutput<typeof procedure>>;
        insertsTaps: boolean;
      };
      if (sqlite) {
        const worker = sqlite;
        return db.connection().execute(() => worker.call(procedure, input) as Promise<ProcedureOutput<typeof procedure>>);
      }
      // Procedures that insert taps: SQLite has one writer, so cursors become
      // visible in the order they were allocated. On PostgreSQL, concurrent
      // transactions could make seq 11 visible before seq 10, and a client
      // syncing from 11 would miss 10: this transaction-scoped lock makes
      // cursor order and commit order the same across all instances.
      return db.transaction().execute(async (trx) => {
        if (insertsTaps) await sql`select pg_advisory_xact_lock(${TAP_SEQUENCE_LOCK})`.execute(trx);
        return run(trx, input);
      });
    },
    async ping() {
      await sql`select 1`.execute(db);
    },
    async close() {
      await db.destroy();
    },
  };
}

/** Applies every pending migration; refuses to start on a failed one. */
export async function migrateToLatest(handle: DatabaseHandle, logger: Logger): Promise<void> {
  const migrator = new Migrator({
    db: handle.db,
    provider: { getMigrations: async () => migrations(handle.dialect) },
    // Kysely looks for its bookkeeping tables in every schema unless told
    // which one; another schema's tables (a second environment in the same
    // database) would be taken for ours.
    ...(handle.dialect === 'postgres' ? { migrationTableSchema: await currentSchema(handle.db) } : {}),
  });
  const { error, results } = await migrator.migrateToLatest();
  for (const result of results ?? []) {
    if (result.status === 'Success') logger.info({ migration: result.migrationName }, 'migration applied');
    if (result.status === 'Error') logger.error({ migration: result.migrationName }, 'migration failed');
  }
  if (error) throw error instanceof Error ? error : new Error(String(error));
}

async function currentSchema(db: Db): Promise<string> {
  const { rows } = await sql<{ schema: string }>`select current_schema() as schema`.execute(db);
  const schema = rows[0]?.schema;
  if (!schema) throw new Error('PostgreSQL has no current schema: check search_path');
  return schema;
}
