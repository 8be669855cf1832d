import { copyFileSync, existsSync, renameSync, rmSync, statSync } from 'node:fs';
import BetterSqlite3 from 'better-sqlite3';
import { acquireOwnership } from '../db/sqlite-owner.ts';

export class AdminError extends Error {
  override name = 'AdminError';
}

export interface CopySummary {
  path: string;
  bytes: number;
  /** Rows per table, for a person to recognise the data. */
  tables: Record<string, number>;
}

/** integrity_check and row counts of a self-contained copy. */
function verify(path: string): CopySummary {
  const db = new BetterSqlite3(path, { readonly: true, fileMustExist: true });
  try {
    const result = db.pragma('integrity_check', { simple: true });
    if (result !== 'ok') throw new AdminError(`integrity_check of ${path} failed: ${String(result)}`);
    const names = db
      .prepare("select name from sqlite_master where type = 'table' and name not like 'sqlite_%' order by name")
      .pluck()
      .all() as string[];
    const tables = Object.fromEntries(
      names.map((name) => [
        name,
        db
          .prepare(`select count(*) from "${name.replaceAll('"', '""')}"`)
          .pluck()
          .get() as number,
      ]),
    );
    return { path, bytes: statSync(path).size, tables };
  } finally {
    db.close();
  }
}

/**
 * A consistent copy of a live SQLite database, taken with SQLite's online
 * backup API in one step (one read transaction: in WAL mode it never blocks
 * the service's writers, and no write can make it start over), then made
 * self-contained (rollback journal, no -wal beside it), checked with
 * integrity_check, and only then moved to `destination`.
 */
export async function backupSqlite(source: string, destination: string, options: { force?: boolean } = {}): Promise<CopySummary> {
  if (!existsSync(source)) throw new AdminError(`there is no SQLite database at ${source}`);
  if (existsSync(destination) && !options.force) throw new AdminError(`${destination} already exists (pass --force to replace it)`);
  const partial = `${destination}.partial-${process.pid}`;
  const db = new BetterSqlite3(source, { fileMustExist: true, timeout: 5000 });
  try {
    await db.backup(partial, { progress: () => 0x7fffffff });
  } catch (error) {
    rmSync(partial, { force: true });
    throw error;
  } finally {
    db.close();
  }
  try {
    const copy = new BetterSqlite3(partial);
    copy.pragma('journal_mode = DELETE');
    copy.close();
    verify(partial);
    renameSync(partial, destination);
  } catch (error) {
    rmSync(partial, { force: true });
    throw error;
  }
  return verify(destination);
}

/**
 * Puts a backup in place of the database. Refuses while a process owns the
 * database (db/sqlite-owner.ts), and holds that ownership meanwhile so no
 * service starts half-way. The database it replaces is kept beside it.
 */
export function restoreSqlite(backup: string, target: string, now = new Date()): CopySummary & { previous?: string } {
  if (!existsSync(backup)) throw new AdminError(`there is no backup at ${backup}`);
  const summary = verify(backup);
  const ownership = acquireOwnership(target, 'navi restore');
  try {
    const incoming = `${target}.restoring-${process.pid}`;
    copyFileSync(backup, incoming);
    let previous: string | undefined;
    if (existsSync(target)) {
      // Fold the WAL into the file first: the copy kept aside must be whole.
      const old = new BetterSqlite3(target, { fileMustExist: true });
      old.pragma('wal_checkpoint(TRUNCATE)');
      old.close();
      previous = `${target}.before-restore-${now.toISOString().replace(/[:.]/g, '-')}`;
      renameSync(target, previous);
    }
    // A WAL left from the old file would be replayed into the new one.
    for (const suffix of ['-wal', '-shm', '-journal']) rmSync(`${target}${suffix}`, { force: true });
    renameSync(incoming, target);
    return { ...summary, path: target, previous };
  } finally {
    ownership.release();
  }
}
