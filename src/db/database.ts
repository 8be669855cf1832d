import { Kysely, sql, type Dialect, type KyselyPlugin } from 'kysely';
import { Migrator } from 'kysely/migration';
import type { DatabaseConfig } from '../config.ts';
import type { Logger } from '../logger.ts';
import type { DialectName } from './dialect.ts';
import { migrations } from './migrations/index.ts';
import { postgresDialect } from './postgres.ts';
import type { Procedure } from './procedures.ts';
import type { Database, Db, Trx } from './schema.ts';
import { SqliteWorkerDialect } from './sqlite-worker-dialect.ts';

export interface DatabaseHandle {
  readonly db: Db;
  readonly dialect: DialectName;
  /** Runs a procedure in one transaction, next to the data (see procedures.ts). */
  run<I, O>(procedure: Procedure<I, O>, input: I): Promise<O>;
  /**
   * A transaction on the caller's side. On PostgreSQL a transaction chosen as
   * a deadlock victim is run again (the lock order rules in delivery/log-repo.ts
   * make that rare); SQLite transactions are serial.
   */
  transaction<T>(work: (trx: Trx) => Promise<T>): Promise<T>;
  ping(): Promise<void>;
  close(): Promise<void>;
}

export interface OpenOptions {
  /** The procedures features will run; their modules are loaded by the SQLite thread at start. */
  procedures?: Array<Procedure<never, unknown>>;
  /** Kysely plugins for the queries of this side (metrics). */
  plugins?: KyselyPlugin[];
}

/** PostgreSQL's deadlock_detected and serialization_failure: the transaction did nothing and may simply run again. */
const RETRYABLE = new Set(['40P01', '40001']);
const MAX_ATTEMPTS = 4;

export function openDatabase(config: DatabaseConfig, options: OpenOptions = {}): DatabaseHandle {
  const modules = [...new Set((options.procedures ?? []).map((procedure) => procedure.module))];
  let dialect: Dialect;
  let name: DialectName;
  let sqlite: SqliteWorkerDialect | undefined;
  if (config.kind === 'sqlite') {
    dialect = sqlite = new SqliteWorkerDialect(config.path, modules);
    name = 'sqlite';
  } else {
    dialect = postgresDialect(config.url).dialect;
    name = 'postgres';
  }
  const db = new Kysely<Database>({ dialect, plugins: options.plugins ?? [] });
  const transaction = async <T>(work: (trx: Trx) => Promise<T>): Promise<T> => {
    for (let attempt = 1; ; attempt++) {
      try {
        return await db.transaction().execute(work);
      } catch (error) {
        const code = (error as { code?: unknown } | null)?.code;
        if (name !== 'postgres' || attempt >= MAX_ATTEMPTS || typeof code !== 'string' || !RETRYABLE.has(code)) throw error;
      }
    }
  };
  return {
    db,
    dialect: name,
    async run(procedure, input) {
      if (sqlite) {
        const worker = sqlite;
        // Holding Kysely's one connection keeps any main-thread transaction out meanwhile.
        return db.connection().execute(() => worker.call(procedure.id, input) as Promise<Awaited<ReturnType<typeof procedure.run>>>);
      }
      return transaction((trx) => procedure.run(trx, input, { dialect: name }));
    },
    transaction,
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
  const migrator = await migratorFor(handle);
  const { error, results } = await migrator.migrateToLatest();
  for (const result of results ?? []) {
    if (result.status === 'Success') logger.info({ migration: result.migrationName }, 'migration applied');
    if (result.status === 'Error') logger.error({ migration: result.migrationName }, 'migration failed');
  }
  if (error) throw error instanceof Error ? error : new Error(String(error));
}

export async function migratorFor(handle: DatabaseHandle): Promise<Migrator> {
  return new Migrator({
    db: handle.db,
    provider: { getMigrations: async () => migrations(handle.dialect) },
    // Kysely looks for its bookkeeping tables in every schema unless told
    // which one; another schema's tables (a second environment in the same
    // database) would be taken for ours.
    ...(handle.dialect === 'postgres' ? { migrationTableSchema: await currentSchema(handle.db) } : {}),
  });
}

async function currentSchema(db: Db): Promise<string> {
  const { rows } = await sql<{ schema: string }>`select current_schema() as schema`.execute(db);
  const schema = rows[0]?.schema;
  if (!schema) throw new Error('PostgreSQL has no current schema: check search_path');
  return schema;
}
