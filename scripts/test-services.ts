/**
 * Which services and tools the test suites can reach, checked up front by
 * `./navi test`. Prints the reachable services on stdout ("postgres redis")
 * and one line per missing one on stderr saying what is skipped and how to
 * get it. With CI=true every one is required: a missing one fails fast.
 */
import { execFileSync } from 'node:child_process';
import { connect } from 'node:net';
import pg from 'pg';

export const POSTGRES_URL = process.env.TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
export const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

async function postgresUp(): Promise<boolean> {
  const client = new pg.Client({ connectionString: POSTGRES_URL, connectionTimeoutMillis: 2000 });
  try {
    await client.connect();
    await client.query('select 1');
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => undefined);
  }
}

function redisUp(): Promise<boolean> {
  const url = new URL(REDIS_URL);
  return new Promise((resolve) => {
    const socket = connect({ host: url.hostname, port: Number(url.port || 6379), timeout: 2000 });
    const done = (up: boolean) => {
      socket.destroy();
      resolve(up);
    };
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.once('data', (data) => done(data.toString().startsWith('+PONG')));
    socket.once('timeout', () => done(false));
    socket.once('error', () => done(false));
  });
}

function toolPresent(name: string): boolean {
  try {
    execFileSync(name, ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

const checks = [
  {
    name: 'postgres',
    up: postgresUp,
    what: `PostgreSQL is not reachable at ${POSTGRES_URL}`,
    skipped: 'the PostgreSQL half of the suite is skipped',
    howTo:
      'apt-get install postgresql (or docker run -p 5432:5432 -e POSTGRES_HOST_AUTH_METHOD=trust postgres:16), createdb test, or set TEST_POSTGRES_URL',
  },
  {
    name: 'redis',
    up: redisUp,
    what: `Redis is not reachable at ${REDIS_URL}`,
    skipped: 'suites that need Redis are skipped',
    howTo: 'apt-get install redis-server (or docker run -p 6379:6379 redis:7), or set TEST_REDIS_URL',
  },
  {
    name: 'promtool',
    up: async () => toolPresent('promtool'),
    what: 'promtool is not installed',
    skipped: 'the alert-rule check is skipped',
    howTo: 'apt-get install prometheus (it brings promtool)',
  },
];

const results = await Promise.all(checks.map(async (check) => ({ ...check, ok: await check.up() })));
const missing = results.filter((r) => !r.ok);
const ci = process.env.CI === 'true';
for (const r of missing) {
  process.stderr.write(
    ci ? `navi test: CI=true needs it: ${r.what}. Get it: ${r.howTo}\n` : `navi test: ${r.what}: ${r.skipped}. To run it: ${r.howTo}\n`,
  );
}
process.stdout.write(
  `${results
    .filter((r) => r.ok)
    .map((r) => r.name)
    .join(' ')}\n`,
);
if (ci && missing.length > 0) process.exit(1);
