import { ConfigError, type Config } from './config.ts';
import { InstancesConflictError } from './db/instances.ts';
import { DatabaseInUseError } from './db/sqlite-owner.ts';

/** Where the start was when it failed; it decides which setting a failure points at. */
export type StartStage = 'configuration' | 'secret' | 'database' | 'listen' | 'running';

export interface StartFailure {
  /** One line each, naming the setting to fix; printed after "navi: ". */
  lines: string[];
  /** Only for failures that look like a bug rather than a setting: the stack, for the report. */
  stack?: string;
}

interface SystemError {
  code?: unknown;
  syscall?: unknown;
  address?: unknown;
  port?: unknown;
  message?: unknown;
  stack?: unknown;
}

/**
 * What a failed start prints. Configuration problems, files, the database
 * and the listening socket are the operator's to fix, so each becomes one
 * line naming the variable and what is wrong, without a stack trace; the
 * stack is kept only for failures nobody could fix from the environment.
 */
export function describeStartFailure(error: unknown, stage: StartStage, config: Config | undefined): StartFailure {
  if (error instanceof ConfigError) return { lines: error.problems };
  // It names the file and the process that holds it already.
  if (error instanceof DatabaseInUseError || error instanceof InstancesConflictError) return { lines: [error.message] };
  const e = (typeof error === 'object' && error !== null ? error : { message: String(error) }) as SystemError;
  const message = typeof e.message === 'string' ? e.message : String(error);
  switch (stage) {
    case 'secret':
      return { lines: [`JWT_SECRET is not set, and the development secret could not be kept beside the database: ${message}`] };
    case 'database':
      return { lines: [databaseProblem(e, message, config)] };
    case 'listen': {
      const line = listenProblem(e, config);
      if (line !== undefined) return { lines: [line] };
      break;
    }
    default:
      break;
  }
  return { lines: [`could not start: ${message}`], stack: typeof e.stack === 'string' ? e.stack : undefined };
}

function listenProblem(e: SystemError, config: Config | undefined): string | undefined {
  const host = typeof e.address === 'string' ? e.address : config?.host;
  const port = typeof e.port === 'number' ? e.port : config?.port;
  switch (e.code) {
    case 'EADDRINUSE':
      return `PORT=${port}: ${host}:${port} is already in use (another navi, or another service?); choose a free PORT`;
    case 'EACCES':
      return `PORT=${port}: not allowed to listen on ${host}:${port} (ports below 1024 need privileges; use a higher PORT behind a proxy)`;
    case 'EADDRNOTAVAIL':
      return `HOST=${JSON.stringify(config?.host ?? host)}: not an address of this machine`;
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return `HOST=${JSON.stringify(config?.host ?? host)}: cannot be resolved`;
    default:
      return undefined;
  }
}

/** PostgreSQL's SQLSTATEs and the network's codes, in words; the URL is shown without its password. */
function databaseProblem(e: SystemError, message: string, config: Config | undefined): string {
  const database = config?.database;
  if (database?.kind !== 'postgres') {
    const path = database?.kind === 'sqlite' ? database.path : '?';
    return `DATABASE_URL=${JSON.stringify(path)}: cannot open the SQLite database: ${message}`;
  }
  const where = postgresLocation(database.url);
  const reasons: Record<string, string> = {
    ECONNREFUSED: 'connection refused (is PostgreSQL running there?)',
    ENOTFOUND: 'the host cannot be resolved',
    EAI_AGAIN: 'the host cannot be resolved (DNS did not answer)',
    ETIMEDOUT: 'the connection timed out',
    EHOSTUNREACH: 'the host is unreachable',
    ECONNRESET: 'the server closed the connection (TLS or pg_hba.conf settings?)',
    '28P01': 'password authentication failed',
  };
  const reason = (typeof e.code === 'string' ? reasons[e.code] : undefined) ?? message;
  return `DATABASE_URL (PostgreSQL at ${where}): ${reason}`;
}

function postgresLocation(url: string): string {
  try {
    const parsed = new URL(url);
    const user = parsed.username === '' ? '' : ` as ${decodeURIComponent(parsed.username)}`;
    return `${parsed.host}${parsed.pathname}${user}`;
  } catch {
    return 'the configured URL';
  }
}
