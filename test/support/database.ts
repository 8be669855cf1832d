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
  drop(): Promise<void>;
}

export const testsUsePostgres = (): boolean => loadConfig().database.kind === 'postgres';

export async function createTestDatabase(): Promise<TestDatabase> {
  const base = loadConfig().database;
  if (base.kind === 'postgres') {
    const schema = `t_${randomBytes(6).toString('hex')}`;
    const admin = new pg.Client({ connectionString: base.url });
    await admin.connect();
    await admin.query(`create schema ${schema}`);
    await admin.end();
    const url = new URL(base.url);
    url.searchParams.set('options', `-c search_path=${schema}`);
    return {
      config: { kind: 'postgres', url: url.toString() },
      async drop() {
        const client = new pg.Client({ connectionString: base.url });
        await client.connect();
        await client.query(`drop schema if exists ${schema} cascade`);
        await client.end();
      },
    };
  }
  const dir = mkdtempSync(join(tmpdir(), 'navi-test-'));
  return {
    config: { kind: 'sqlite', path: join(dir, 'navi.db') },
    async drop() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
