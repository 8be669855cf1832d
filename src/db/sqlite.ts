import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { SqliteDialect, type SqliteDatabase } from 'kysely';

/**
 * Opens the SQLite file with the settings the service relies on: WAL for
 * concurrent readers, synchronous=FULL so a committed tap survives power loss,
 * foreign keys on, and a busy timeout for the (rare) second process.
 */
export function openSqlite(path: string): BetterSqlite3.Database {
  if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
  const db = new BetterSqlite3(path);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.pragma('foreign_keys = ON');
  db.pragma('busy_timeout = 5000');
  return db;
}

/**
 * Kysely prepares every query anew; compiling the same SQL text again is a
 * measurable share of a tap's cost. Statements are cached by their SQL text
 * (Kysely produces a bounded set of shapes; the cache is bounded anyway).
 */
export function withStatementCache(db: BetterSqlite3.Database, maxStatements = 500): SqliteDatabase {
  const cache = new Map<string, BetterSqlite3.Statement>();
  return {
    prepare(sql: string) {
      let statement = cache.get(sql);
      if (statement === undefined) {
        statement = db.prepare(sql);
        if (cache.size >= maxStatements) cache.delete(cache.keys().next().value as string);
        cache.set(sql, statement);
      }
      return statement;
    },
    close() {
      cache.clear();
      db.close();
    },
  };
}

export function sqliteDialect(path: string): { dialect: SqliteDialect; raw: BetterSqlite3.Database } {
  const raw = openSqlite(path);
  return { dialect: new SqliteDialect({ database: withStatementCache(raw) }), raw };
}
