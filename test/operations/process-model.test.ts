import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { promisify } from 'node:util';
import { loadConfig } from '../../src/config.ts';
import { containerfileInstructions, Launched, ROOT } from '../support/launch.ts';
import { ServerProcess } from '../support/server-process.ts';

const onPostgres = loadConfig().database.kind === 'postgres';
const run = promisify(execFile);

function tempDatabase(t: { after: (fn: () => void) => void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'navi-process-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return join(dir, 'navi.db');
}

const portClosed = (port: number) =>
  new Promise<boolean>((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.once('connect', () => (socket.destroy(), resolve(false)));
    socket.once('error', () => resolve(true));
  });

/** SIGTERM to exactly the launched process: the service itself drains and exits 0, leaving nothing listening. */
async function assertGracefulStop(launched: Launched): Promise<void> {
  launched.child.kill('SIGTERM');
  assert.equal(await launched.exited, 0, launched.output);
  assert.match(launched.output, /"msg":"shutting down"/);
  assert.ok(await portClosed(launched.port), 'no orphan left listening');
}

const production = (database: string) => ({
  NODE_ENV: 'production',
  JWT_SECRET: randomBytes(32).toString('base64url'),
  DATABASE_URL: database,
});

describe(
  'the process model: signals reach the service however it is started',
  { skip: onPostgres && 'the process model does not depend on the database (runs with the SQLite suite)' },
  () => {
    test('./navi start ends as the node process itself; SIGTERM to it stops the service gracefully', async (t) => {
      const launched = await Launched.start([join(ROOT, 'navi'), 'start'], { DATABASE_URL: tempDatabase(t), NODE_ENV: 'development' });
      t.after(() => launched.kill());
      const argv = launched.commandLine();
      assert.match(argv[0]!, /node$/, `the started process is node, not a shell or npm: ${argv.join(' ')}`);
      // The start command (scripts/start.ts) runs the service in this very process, after the Node version check.
      assert.deepEqual(argv.slice(1), ['-r', './scripts/require-node.cjs', 'scripts/start.ts']);
      await assertGracefulStop(launched);
    });

    test("the image's CMD with the image's environment: draining first (/readyz 503, health check fails, /livez 200), then a clean exit", async (t) => {
      const instructions = containerfileInstructions(join(ROOT, 'Containerfile'));
      const cmd = JSON.parse(instructions.findLast(([k]) => k === 'CMD')![1]) as string[];
      assert.deepEqual(cmd, ['node', 'src/server.ts'], 'exec form: node is the container process');
      const imageEnv = Object.fromEntries(
        instructions.filter(([k]) => k === 'ENV').flatMap(([, v]) => [...v.matchAll(/(\w+)=(\S+)/g)].map((m) => [m[1]!, m[2]!])),
      );
      assert.equal(imageEnv.NODE_ENV, 'production');
      assert.match(imageEnv.NODE_OPTIONS ?? '', /--max-old-space-size-percentage=\d+/, 'heap sized from the memory limit');
      assert.equal(instructions.find(([k]) => k === 'USER')?.[1], 'node', 'not root');
      assert.ok(instructions.some(([k, v]) => k === 'VOLUME' && v.includes('/data')) && imageEnv.DATABASE_URL?.startsWith('/data/'));
      const healthcheck = JSON.parse(instructions.find(([k]) => k === 'HEALTHCHECK')![1].replace(/^.*?CMD\s+/, '')) as string[];

      const launched = await Launched.start(cmd, { ...imageEnv, ...production(tempDatabase(t)), SHUTDOWN_DELAY_SECONDS: '2' });
      t.after(() => launched.kill());
      const probe = () =>
        run(healthcheck[0]!, healthcheck.slice(1), { env: { PATH: process.env.PATH, PORT: String(launched.port) } }).then(
          () => 0,
          (error: { code?: number }) => error.code ?? 1,
        );
      assert.equal(await probe(), 0, "the image's health check passes on a ready instance");

      launched.child.kill('SIGTERM');
      await launched.waitFor(/draining: \/readyz answers 503/);
      assert.equal((await fetch(`${launched.url}/readyz`)).status, 503);
      assert.equal((await fetch(`${launched.url}/livez`)).status, 200);
      assert.equal(await probe(), 1, 'the health check fails while draining');
      assert.equal(await launched.exited, 0, launched.output);
      assert.ok(await portClosed(launched.port));
    });

    test("Railway's start command (exec form) and the Procfile line (through sh -c) both reach node", async (t) => {
      const railway = JSON.parse(readFileSync(join(ROOT, 'railway.json'), 'utf8'));
      assert.equal(railway.deploy.healthcheckPath, '/readyz');
      assert.equal(railway.deploy.restartPolicyType, 'ON_FAILURE');
      assert.ok(railway.deploy.drainingSeconds > loadConfig({}).shutdownGraceMs / 1000, 'Railway waits longer than the service drains');
      const env = { ...production(tempDatabase(t)), SHUTDOWN_DELAY_SECONDS: '0' };
      const exec = await Launched.start(railway.deploy.startCommand.split(' '), env);
      t.after(() => exec.kill());
      await assertGracefulStop(exec);

      const procfile = /^web:\s*(.+)$/m.exec(readFileSync(join(ROOT, 'Procfile'), 'utf8'))![1]!;
      const shell = await Launched.start(['sh', '-c', procfile], env);
      t.after(() => shell.kill());
      assert.match(shell.commandLine()[0]!, /node$/, 'the shell replaced itself with node');
      await assertGracefulStop(shell);
    });

    test('a second process on a SQLite file in use refuses to start, naming the file and the other process', async (t) => {
      const database = tempDatabase(t);
      const first = await ServerProcess.start({ DATABASE_URL: database, NODE_ENV: 'development' });
      t.after(() => first.stop());
      const second = await ServerProcess.run({ DATABASE_URL: database, NODE_ENV: 'development', PORT: '0' });
      assert.equal(second.code, 1);
      assert.match(
        second.output,
        new RegExp(`navi: the SQLite database ${database} is in use by process ${first.child.pid} on \\S+ \\(navi, since `),
      );
      assert.equal((await first.call('GET', '/readyz')).status, 200, 'the first one is unharmed');
    });
  },
);
