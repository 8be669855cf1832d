import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { loadConfig, type DatabaseConfig } from '../../src/config.ts';

/**
 * A database of its own for one test: a temporary SQLite file, or, when the
 * suite runs with DATABASE_URL=postgres://..., a fresh schema in that
 * database. `drop` removes it.
 */
export interface TestDatabase {
  config: DatabaseConfig;
  /** Runs `work` (which migrates) so that no schema is dropped meanwhile (see below). */
  whileMigrating<T>(work: () => Promise<T>): Promise<T>;
  drop(): Promise<void>;
}

/**
 * Kysely's migrator introspects every schema of the database; a schema that
 * another test process drops at that moment makes the introspection fail.
 * Migrations hold this advisory lock shared, drops hold it exclusively.
 */
const SCHEMA_CHURN_LOCK = 7_346_002;

async function withAdmin<T>(url: string, work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

export async function createTestDatabase(): Promise<TestDatabase> {
  const base = loadConfig().database;
  if (base.kind === 'postgres') {
    const schema = `t_${randomBytes(6).toString('hex')}`;
    await withAdmin(base.url, (admin) => admin.query(`create schema ${schema}`));
    const url = new URL(base.url);
    url.searchParams.set('options', `-c search_path=${schema}`);
    return {
      config: { kind: 'postgres', url: url.toString() },
      whileMigrating: (work) =>
        withAdmin(base.url, async (admin) => {
          await admin.query('select pg_advisory_lock_shared($1)', [SCHEMA_CHURN_LOCK]);
          return work();
        }),
      drop: () =>
        withAdmin(base.url, async (admin) => {
          await admin.query('select pg_advisory_lock($1)', [SCHEMA_CHURN_LOCK]);
          await admin.query(`drop schema if exists ${schema} cascade`);
        }),
    };
  }
  const dir = mkdtempSync(join(tmpdir(), 'navi-test-'));
  return {
    config: { kind: 'sqlite', path: join(dir, 'navi.db') },
    whileMigrating: (work) => work(),
    async drop() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
