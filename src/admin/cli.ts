import { Writable } from 'node:stream';
import { pino } from 'pino';
import { ConfigError, loadConfig, type Config, type DatabaseConfig } from '../config.ts';
import { migrateToLatest, openDatabase } from '../db/database.ts';
import { acquireOwnership, DatabaseInUseError } from '../db/sqlite-owner.ts';
import { backupPostgres, restorePostgres } from './postgres-backup.ts';
import { AdminError, backupSqlite, restoreSqlite } from './sqlite-backup.ts';
import { inspectTap } from './inspect-tap.ts';

/**
 * `./navi <command>`: the operator's commands, in the same entry point as
 * start and test. Each has --help; a usage error exits 2, a refusal or a
 * failure exits 1 with one line saying why.
 */
export interface AdminIo {
  out: (text: string) => void;
  err: (text: string) => void;
  /** The environment to configure from (config.ts reads process.env when absent). */
  env?: Record<string, string | undefined>;
}

export class UsageError extends Error {
  override name = 'UsageError';
}

interface Command {
  usage: string;
  summary: string;
  details: string;
  flags: string[];
  run(args: Parsed, io: AdminIo, config: Config): Promise<void>;
}

interface Parsed {
  positional: string[];
  flags: Set<string>;
}

const SERVICE_COMMANDS = [
  ['start', 'Start the service (exec node src/server.ts: signals reach it directly)'],
  ['test', 'Lint, typecheck, docs check, the tests on SQLite and on PostgreSQL (see README)'],
] as const;

const COMMANDS: Record<string, Command> = {
  migrate: {
    usage: 'migrate',
    summary: 'Apply pending database migrations and exit',
    details:
      'Runs the migrations the service would run at start, then exits. On SQLite it refuses while a service owns the database (stop it first: the running code expects its own schema).',
    flags: [],
    async run(_args, io, config) {
      const ownership = config.database.kind === 'sqlite' ? acquireOwnership(config.database.path, 'navi migrate') : undefined;
      const applied: string[] = [];
      const log = pino(
        { level: 'info' },
        new Writable({
          write(chunk: Buffer, _encoding, done) {
            const line = JSON.parse(chunk.toString()) as { migration?: string; msg?: string };
            if (line.migration && line.msg === 'migration applied') applied.push(line.migration);
            done();
          },
        }),
      );
      const database = openDatabase(config.database);
      try {
        await migrateToLatest(database, log);
      } finally {
        await database.close();
        ownership?.release();
      }
      io.out(
        applied.length === 0
          ? `migrate: ${where(config.database)} is up to date\n`
          : `migrate: applied ${applied.join(', ')} to ${where(config.database)}\n`,
      );
    },
  },
  backup: {
    usage: 'backup FILE [--force]',
    summary: 'Write a consistent, verified copy of the database to FILE (safe while the service runs)',
    details:
      "SQLite: SQLite's online backup API, then integrity_check on the copy. PostgreSQL: pg_dump --format=custom of the service's schema, checked with pg_restore --list. FILE must not exist unless --force.",
    flags: ['--force'],
    async run(args, io, config) {
      const file = onePath(args, 'backup');
      const started = performance.now();
      if (config.database.kind === 'sqlite') {
        const copy = await backupSqlite(config.database.path, file, { force: args.flags.has('force') });
        io.out(`backup: wrote ${copy.path} (${size(copy.bytes)}) from ${config.database.path} in ${ms(started)}; integrity_check ok\n`);
        io.out(
          `backup: rows ${Object.entries(copy.tables)
            .map(([t, n]) => `${t} ${n}`)
            .join(', ')}\n`,
        );
      } else {
        const dump = await backupPostgres(config.database.url, file, { force: args.flags.has('force') });
        io.out(`backup: wrote ${dump.path} (${size(dump.bytes)}, pg_dump custom format) of schema ${dump.schema} in ${ms(started)}\n`);
        io.out(`backup: tables ${dump.tables.join(', ')}\n`);
      }
    },
  },
  restore: {
    usage: 'restore FILE [--force]',
    summary: 'Replace the database with a backup made by `backup`',
    details:
      'SQLite: refuses while a service owns the database; checks the copy, keeps the replaced file beside it as <db>.before-restore-<time>. PostgreSQL: refuses while other sessions are connected (--force skips that check), then pg_restore --clean in one transaction.',
    flags: ['--force'],
    async run(args, io, config) {
      const file = onePath(args, 'restore');
      if (config.database.kind === 'sqlite') {
        const restored = restoreSqlite(file, config.database.path);
        io.out(`restore: ${restored.path} now holds ${file} (${size(restored.bytes)}); integrity_check ok\n`);
        if (restored.previous) io.out(`restore: the database it replaced is kept at ${restored.previous}\n`);
      } else {
        const restored = await restorePostgres(file, config.database.url, { force: args.flags.has('force') });
        io.out(`restore: schema ${restored.schema} now holds ${file} (tables ${restored.tables.join(', ')})\n`);
      }
    },
  },
  'inspect-tap': {
    usage: 'inspect-tap TAP_ID [--json]',
    summary: "Show one tap and its delivery and push state on each of the recipient's devices (for support)",
    details:
      'Reads the same record as GET /v1/taps/{id}, without the per-user check; safe while the service runs. --json prints it as the API would.',
    flags: ['--json'],
    async run(args, io, config) {
      const [tapId, ...rest] = args.positional;
      if (!tapId || rest.length > 0) throw new UsageError('inspect-tap takes one TAP_ID');
      if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(tapId))
        throw new UsageError(`${tapId} is not a tap id (a UUID)`);
      io.out(await inspectTap(config.database, tapId.toLowerCase(), { json: args.flags.has('json') }));
    },
  },
};

const where = (database: DatabaseConfig) => (database.kind === 'sqlite' ? database.path : 'PostgreSQL');
const size = (bytes: number) => (bytes < 1024 * 1024 ? `${(bytes / 1024).toFixed(1)} KiB` : `${(bytes / 2 ** 20).toFixed(1)} MiB`);
const ms = (since: number) => `${Math.round(performance.now() - since)} ms`;

function onePath(args: Parsed, command: string): string {
  if (args.positional.length !== 1) throw new UsageError(`${command} takes one FILE`);
  return args.positional[0]!;
}

function parse(argv: string[], allowed: string[]): Parsed {
  const positional: string[] = [];
  const flags = new Set<string>();
  for (const arg of argv) {
    if (arg === '--help' || arg === '-h') flags.add('help');
    else if (arg.startsWith('-')) {
      if (!allowed.includes(arg)) throw new UsageError(`unknown option ${arg}`);
      flags.add(arg.replace(/^-+/, ''));
    } else positional.push(arg);
  }
  return { positional, flags };
}

export function usage(): string {
  const rows = [...SERVICE_COMMANDS.map(([name, summary]) => [name, summary]), ...Object.values(COMMANDS).map((c) => [c.usage, c.summary])];
  const width = Math.max(...rows.map(([name]) => name!.length));
  return [
    'usage: ./navi <command> [options]',
    '',
    ...rows.map(([name, summary]) => `  ${name!.padEnd(width)}  ${summary}`),
    '',
    'Every command reads its configuration from the environment, like the service (DATABASE_URL, ...).',
    '`./navi <command> --help` says more about one command. Runbook: docs/operations.md',
    '',
  ].join('\n');
}

function commandHelp(command: Command): string {
  return `usage: ./navi ${command.usage}\n\n${command.summary}.\n${command.details}\n`;
}

/** Runs one command; returns the exit code (0 done, 1 refused or failed, 2 usage error). */
export async function runAdmin(argv: string[], io: AdminIo): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === 'help' || name === '--help' || name === '-h') {
    (name === undefined ? io.err : io.out)(usage());
    return name === undefined ? 2 : 0;
  }
  const command = COMMANDS[name];
  if (!command) {
    io.err(`navi: unknown command ${name}\n\n${usage()}`);
    return 2;
  }
  try {
    const args = parse(rest, command.flags);
    if (args.flags.has('help')) {
      io.out(commandHelp(command));
      return 0;
    }
    await command.run(args, io, loadConfig(io.env));
    return 0;
  } catch (error) {
    if (error instanceof UsageError) {
      io.err(`navi ${name}: ${error.message}\n\n${commandHelp(command)}`);
      return 2;
    }
    if (error instanceof ConfigError) io.err(`navi ${name}: ${error.message}\n`);
    else if (error instanceof AdminError || error instanceof DatabaseInUseError) io.err(`navi ${name}: ${error.message}\n`);
    else io.err(`navi ${name}: failed: ${error instanceof Error ? error.message : String(error)}\n`);
    return 1;
  }
}
