import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';

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
 * Prepared statements by SQL text. Kysely produces a bounded set of shapes,
 * and compiling the same text again is a measurable share of a tap's cost;
 * the cache is bounded anyway.
 */
export function statementCache(db: BetterSqlite3.Database, maxStatements = 500): (sql: string) => BetterSqlite3.Statement {
  const cache = new Map<string, BetterSqlite3.Statement>();
  return (sql) => {
    let statement = cache.get(sql);
    if (statement === undefined) {
      statement = db.prepare(sql);
      if (cache.size >= maxStatements) cache.delete(cache.keys().next().value as string);
      cache.set(sql, statement);
    }
    return statement;
  };
}
