import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { dirname } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';

/**
 * One process owns a SQLite database: push recovery at start reclaims every
 * claim still held, which is only right when no other process is pushing.
 *
 * The ownership is a write lock on a small SQLite file beside the database
 * (`<db>.owner`), taken with BEGIN IMMEDIATE and held for the life of the
 * process. The kernel drops it when the process ends however it ends, so a
 * crash never leaves a stale lock behind. Who holds it is written, as JSON,
 * to `<db>.owner.json`, for the message the next process prints.
 */
export interface OwnerInfo {
  pid: number;
  host: string;
  since: string;
  command: string;
}

export class DatabaseInUseError extends Error {
  readonly path: string;
  readonly owner: OwnerInfo | undefined;
  constructor(path: string, owner: OwnerInfo | undefined) {
    const who = owner ? `process ${owner.pid} on ${owner.host} (${owner.command}, since ${owner.since})` : 'another process';
    super(`the SQLite database ${path} is in use by ${who}; stop it first (one process owns a SQLite database)`);
    this.name = 'DatabaseInUseError';
    this.path = path;
    this.owner = owner;
  }
}

export interface Ownership {
  release(): void;
}

export const ownerLockPath = (databasePath: string) => `${databasePath}.owner`;
const ownerInfoPath = (databasePath: string) => `${databasePath}.owner.json`;

/** Takes the database for this process, or throws DatabaseInUseError naming the process that has it. */
export function acquireOwnership(databasePath: string, command = 'navi'): Ownership {
  mkdirSync(dirname(databasePath), { recursive: true });
  const lock = new BetterSqlite3(ownerLockPath(databasePath), { timeout: 0 });
  try {
    lock.pragma('journal_mode = DELETE');
    lock.exec('BEGIN IMMEDIATE');
  } catch (error) {
    lock.close();
    if ((error as { code?: string }).code === 'SQLITE_BUSY') throw new DatabaseInUseError(databasePath, readOwner(databasePath));
    throw error;
  }
  const info: OwnerInfo = { pid: process.pid, host: hostname(), since: new Date().toISOString(), command };
  writeFileSync(ownerInfoPath(databasePath), `${JSON.stringify(info)}\n`);
  let released = false;
  return {
    release() {
      if (released) return;
      released = true;
      rmSync(ownerInfoPath(databasePath), { force: true });
      lock.exec('ROLLBACK');
      lock.close();
    },
  };
}

/** Who owns the database right now, if anyone (for restore's refusal and for people). */
export function currentOwner(databasePath: string): OwnerInfo | undefined {
  try {
    acquireOwnership(databasePath, 'probe').release();
    return undefined;
  } catch (error) {
    if (error instanceof DatabaseInUseError) return error.owner ?? { pid: 0, host: 'unknown', since: 'unknown', command: 'unknown' };
    throw error;
  }
}

function readOwner(databasePath: string): OwnerInfo | undefined {
  try {
    return JSON.parse(readFileSync(ownerInfoPath(databasePath), 'utf8')) as OwnerInfo;
  } catch {
    return undefined;
  }
}
