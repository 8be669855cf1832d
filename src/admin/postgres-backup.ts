import { spawn } from 'node:child_process';
import { existsSync, renameSync, rmSync, statSync } from 'node:fs';
import pg from 'pg';
import { AdminError } from './sqlite-backup.ts';

/**
 * PostgreSQL backups are pg_dump's custom format of the service's schema (the
 * first of the connection's search_path), restored with pg_restore. The
 * commands are the recipe of docs/operations.md#postgresql, run for you.
 */
function run(command: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.once('error', (error) =>
      reject(new AdminError(`${command} could not run (${error.message}): install the PostgreSQL client tools`)),
    );
    child.once('exit', (code) =>
      code === 0 ? resolve(stdout) : reject(new AdminError(`${command} failed (exit ${code}): ${stderr.trim()}`)),
    );
  });
}

/**
 * The URL for libpq (pg_dump, pg_restore): it decodes %20 but not '+', which
 * URLSearchParams writes for spaces (options=-c search_path=... in a query string).
 */
export function libpqUrl(url: string): string {
  const parsed = new URL(url);
  parsed.search = [...parsed.searchParams].map(([key, value]) => `${encodeURIComponent(key)}=${encodeURIComponent(value)}`).join('&');
  return parsed.toString();
}

async function withClient<T>(url: string, work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

export interface DumpSummary {
  path: string;
  bytes: number;
  schema: string;
  /** Tables whose data the archive holds (from pg_restore --list). */
  tables: string[];
}

async function listTables(file: string): Promise<string[]> {
  const listing = await run('pg_restore', ['--list', file]);
  return [...listing.matchAll(/TABLE DATA \S+ (\S+)/g)].map((m) => m[1]!).sort();
}

export async function backupPostgres(url: string, destination: string, options: { force?: boolean } = {}): Promise<DumpSummary> {
  if (existsSync(destination) && !options.force) throw new AdminError(`${destination} already exists (pass --force to replace it)`);
  const schema = await withClient(
    url,
    async (client) => (await client.query<{ schema: string }>('select current_schema() as schema')).rows[0]!.schema,
  );
  const partial = `${destination}.partial-${process.pid}`;
  try {
    await run('pg_dump', [
      '--format=custom',
      '--no-owner',
      '--no-privileges',
      `--schema=${schema}`,
      `--file=${partial}`,
      `--dbname=${libpqUrl(url)}`,
    ]);
    const tables = await listTables(partial);
    renameSync(partial, destination);
    return { path: destination, bytes: statSync(destination).size, schema, tables };
  } finally {
    rmSync(partial, { force: true });
  }
}

/** Other sessions on the target database: a service still connected would see its tables vanish mid-request. */
async function otherSessions(url: string): Promise<string[]> {
  return withClient(url, async (client) => {
    const { rows } = await client.query<{ pid: number; application_name: string; client_addr: string | null }>(
      `select pid, application_name, client_addr from pg_stat_activity
        where datname = current_database() and pid <> pg_backend_pid() and backend_type = 'client backend'`,
    );
    return rows.map((r) => `pid ${r.pid}${r.application_name ? ` (${r.application_name})` : ''} from ${r.client_addr ?? 'a local socket'}`);
  });
}

export async function restorePostgres(file: string, url: string, options: { force?: boolean } = {}): Promise<DumpSummary> {
  if (!existsSync(file)) throw new AdminError(`there is no backup at ${file}`);
  const tables = await listTables(file);
  if (!options.force) {
    const sessions = await otherSessions(url);
    if (sessions.length > 0) {
      throw new AdminError(
        `the database is in use by ${sessions.length} other session(s): ${sessions.slice(0, 5).join('; ')}; stop the service first (or pass --force)`,
      );
    }
  }
  await run('pg_restore', [
    '--clean',
    '--if-exists',
    '--no-owner',
    '--no-privileges',
    '--single-transaction',
    '--exit-on-error',
    `--dbname=${libpqUrl(url)}`,
    file,
  ]);
  const schema = await withClient(
    url,
    async (client) => (await client.query<{ schema: string }>('select current_schema() as schema')).rows[0]!.schema,
  );
  return { path: file, bytes: statSync(file).size, schema, tables };
}
