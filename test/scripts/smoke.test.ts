import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createServer, request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import BetterSqlite3 from 'better-sqlite3';
import pg from 'pg';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { ServerProcess, freePort } from '../support/server-process.ts';

const SMOKE = fileURLToPath(new URL('../../scripts/smoke.ts', import.meta.url));

async function smoke(...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [SMOKE, ...args], { env: { PATH: process.env.PATH ?? '' }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  return { code, stdout, stderr };
}

/** How many users the service's database holds: the smoke test must leave none behind. */
async function countUsers(database: TestDatabase): Promise<number> {
  const { config } = database;
  if (config.kind === 'sqlite') {
    const db = new BetterSqlite3(config.path, { readonly: true });
    try {
      return (db.prepare('select count(*) as n from users').get() as { n: number }).n;
    } finally {
      db.close();
    }
  }
  const client = new pg.Client({ connectionString: config.url });
  await client.connect();
  try {
    return Number((await client.query<{ n: string }>('select count(*) as n from users')).rows[0]?.n);
  } finally {
    await client.end();
  }
}

const STEPS = [
  'register the sender',
  'register the recipient',
  'sender shows a pairing code',
  'recipient redeems it',
  'recipient socket says hello',
  'sender taps',
  'recipient gets it live',
  'history has it',
  'delete the sender',
  'delete the recipient',
];

describe('./navi smoke against a real server', () => {
  let database: TestDatabase;
  let server: ServerProcess;
  before(async () => {
    database = await createTestDatabase();
    const { config } = database;
    server = await database.whileMigrating(() =>
      ServerProcess.start({
        DATABASE_URL: config.kind === 'sqlite' ? config.path : config.url,
        JWT_SECRET: randomBytes(32).toString('base64url'),
        NODE_ENV: 'development',
      }),
    );
  });
  after(async () => {
    await server.stop();
    await database.drop();
  });

  test('passes every step, each with its time, and leaves no account behind', async () => {
    const result = await smoke(server.url);
    assert.equal(result.code, 0, `${result.stdout}\n${result.stderr}`);
    assert.equal(result.stderr, '');
    const lines = result.stdout.trimEnd().split('\n');
    assert.equal(lines[0], `navi smoke test against ${server.url}/`);
    assert.deepEqual(
      lines.slice(1, -1).map((line) => /^ {2}✔ (.+?) +\d+ ms$/.exec(line)?.[1]),
      STEPS,
    );
    assert.match(lines.at(-1)!, /^passed in \d+ ms$/);
    assert.equal(await countUsers(database), 0);
  });

  test('fails at the live step when a proxy on the way refuses WebSocket upgrades, and still deletes its accounts', async (t) => {
    const proxy = await noUpgradeProxy(new URL(server.url));
    t.after(() => proxy.close());
    const result = await smoke(`http://127.0.0.1:${(proxy.address() as AddressInfo).port}`, '--timeout', '5');
    assert.equal(result.code, 1, result.stdout);
    assert.match(result.stdout, /\n {2}✘ recipient socket says hello +\d+ ms {2}the WebSocket upgrade of \/v1\/ws was answered 404/);
    assert.doesNotMatch(result.stdout, /sender taps/, 'stops at the first failure');
    assert.match(result.stdout, /✔ delete the sender .*\n {2}✔ delete the recipient/);
    assert.equal(
      result.stderr,
      'navi smoke: FAILED at recipient socket says hello: the WebSocket upgrade of /v1/ws was answered 404 (does a proxy on the way pass WebSocket upgrades?)\n',
    );
    assert.equal(await countUsers(database), 0);
  });
});

test('./navi smoke against nothing listening fails at once with one clear line', async () => {
  const port = await freePort();
  const result = await smoke(`http://127.0.0.1:${port}`);
  assert.equal(result.code, 1);
  assert.equal(
    result.stderr,
    `navi smoke: FAILED at register the sender: nothing is listening at http://127.0.0.1:${port} (ECONNREFUSED): is the service running?\n`,
  );
  assert.match(result.stdout, /^ {2}✘ register the sender/m);
  assert.doesNotMatch(result.stdout, /delete/, 'no account was made, so none is deleted');
});

test('./navi smoke refuses a base URL it cannot use', async () => {
  for (const args of [['ftp://example.com'], ['not a url'], ['http://a', 'http://b'], ['--timeout', 'soon']]) {
    const result = await smoke(...args);
    assert.equal(result.code, 2, args.join(' '));
    assert.match(result.stderr, /^navi smoke: .+\nusage: \.\/navi smoke/, args.join(' '));
  }
});

/** A reverse proxy that passes plain HTTP but answers every WebSocket upgrade 404, like a load balancer not set up for them. */
async function noUpgradeProxy(target: URL): Promise<Server> {
  const proxy = createServer((incoming, outgoing) => {
    const forwarded = httpRequest(
      { host: target.hostname, port: target.port, method: incoming.method, path: incoming.url, headers: incoming.headers },
      (answer) => {
        outgoing.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(outgoing);
      },
    );
    forwarded.on('error', () => outgoing.destroy());
    incoming.pipe(forwarded);
  });
  proxy.on('upgrade', (_request, socket) => socket.end('HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n'));
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  return proxy;
}
