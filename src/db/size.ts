import { statSync } from 'node:fs';
import { sql } from 'kysely';
import type { DatabaseConfig } from '../config.ts';
import type { DatabaseHandle } from './database.ts';

const fileSize = (path: string): number => {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
};

/** What the database takes on disk: SQLite's file and its WAL, or PostgreSQL's pg_database_size. */
export async function databaseSizeBytes(config: DatabaseConfig, database: DatabaseHandle): Promise<number> {
  if (config.kind === 'sqlite') return config.path === ':memory:' ? 0 : fileSize(config.path) + fileSize(`${config.path}-wal`);
  const { rows } = await sql<{ size: number | string }>`select pg_database_size(current_database()) as size`.execute(database.db);
  return Number(rows[0]?.size ?? Number.NaN);
}
