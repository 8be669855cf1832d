import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { accessSync, constants, readFileSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import { freePort } from '../support/server-process.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const GUARD = join(ROOT, 'scripts', 'require-node.cjs');
const minimum = Number(
  /^>=(\d+)/.exec((JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { engines: { node: string } }).engines.node)?.[1],
);

function run(command: string, args: string[], options: { env?: Record<string, string>; cwd?: string } = {}) {
  const child = spawn(command, args, {
    cwd: options.cwd ?? ROOT,
    env: { PATH: process.env.PATH ?? '', ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  return { child, output: () => ({ stdout, stderr }), exited: new Promise<number | null>((resolve) => child.on('close', resolve)) };
}

/** A Node.js older than the minimum on this machine's PATH (the machine's own, before scripts/node24.sh), if any. */
function olderNode(): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    const candidate = join(dir, 'node');
    try {
      accessSync(candidate, constants.X_OK);
      const major = Number(execFileSync(candidate, ['-p', 'process.versions.node.split(".")[0]'], { encoding: 'utf8' }).trim());
      if (major < minimum) return candidate;
    } catch {
      // not there, or not a node
    }
  }
  return undefined;
}

test('engines asks for Node.js 24, the version the README and scripts/node24.sh provide', () => {
  assert.equal(minimum, 24);
});

test('the version check says in one line what is needed, reading the minimum from package.json', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'navi-guard-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  await mkdir(join(dir, 'scripts'));
  await copyFile(GUARD, join(dir, 'scripts', 'require-node.cjs'));
  await writeFile(join(dir, 'package.json'), JSON.stringify({ engines: { node: '>=99' } }));

  const refused = run(process.execPath, [join(dir, 'scripts', 'require-node.cjs')]);
  assert.equal(await refused.exited, 1);
  assert.equal(
    refused.output().stderr,
    `navi: needs Node.js 99 or newer, and this is Node.js ${process.version} (${process.execPath}); run ./navi start, which installs Node.js 99 into .cache/ when needed (README.md, "Node 24")\n`,
  );

  const passed = run(process.execPath, [GUARD]);
  assert.equal(await passed.exited, 0);
  assert.deepEqual(passed.output(), { stdout: '', stderr: '' });
});

test("an older Node.js running the start command gets that line, not Node's own errors", (t: TestContext) => {
  const old = olderNode();
  if (old === undefined) return t.skip(`no Node.js older than ${minimum} on PATH`);
  return (async () => {
    const started = run(old, ['-r', './scripts/require-node.cjs', 'scripts/start.ts']);
    assert.equal(await started.exited, 1);
    const { stderr } = started.output();
    assert.match(stderr, new RegExp(`^navi: needs Node\\.js ${minimum} or newer, and this is Node\\.js v\\d+`));
    assert.equal(stderr.trimEnd().split('\n').length, 1, stderr);
  })();
});

/** Starts `node scripts/start.ts` (optionally inside a pseudo-terminal) and returns its output up to the listening line. */
async function startCommand(t: TestContext, env: Record<string, string>, terminal: boolean): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'navi-startcmd-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const fullEnv = { DATABASE_URL: join(dir, 'navi.db'), PORT: String(await freePort()), ...env };
  // util-linux `script` gives the child a terminal as its stdout, as a person's shell would.
  const started = terminal
    ? run('script', ['-qec', `${process.execPath} scripts/start.ts`, '/dev/null'], { env: { ...fullEnv, TERM: 'dumb' } })
    : run(process.execPath, ['scripts/start.ts'], { env: fullEnv });
  t.after(() => started.child.kill('SIGTERM'));
  const deadline = Date.now() + 20_000;
  while (!/navi is listening/.test(started.output().stdout)) {
    if (Date.now() > deadline || started.child.exitCode !== null) assert.fail(`no listening line:\n${JSON.stringify(started.output())}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return started.output().stdout;
}

const hasScript = (() => {
  try {
    execFileSync('script', ['-qec', 'true', '/dev/null'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

test('the start command logs JSON lines when its output is not a terminal', async (t) => {
  const output = await startCommand(t, { NODE_ENV: 'development' }, false);
  const lines = output.trim().split('\n');
  assert.ok(
    lines.every((line) => typeof JSON.parse(line).level === 'number'),
    output,
  );
});

test('in a terminal, the start command logs lines for people', { skip: !hasScript && 'no util-linux script' }, async (t) => {
  const output = await startCommand(t, { NODE_ENV: 'development' }, true);
  const line = output.split('\n').find((text) => text.includes('navi is listening'))!;
  assert.match(line, /^\[\d\d:\d\d:\d\d\.\d{3}\] .*INFO.*server: navi is listening on http:\/\/127\.0\.0\.1:\d+; API reference at/);
  assert.throws(() => JSON.parse(line));
});

test(
  'in a terminal with NODE_ENV=production, or with LOG_FORMAT=json, the logs stay JSON',
  { skip: !hasScript && 'no util-linux script' },
  async (t) => {
    const production = await startCommand(t, { NODE_ENV: 'production', JWT_SECRET: 'x'.repeat(40), HOST: '127.0.0.1' }, true);
    const listening = production.split(/\r?\n/).find((text) => text.includes('navi is listening'))!;
    assert.equal(typeof JSON.parse(listening).level, 'number');
    const asked = await startCommand(t, { NODE_ENV: 'development', LOG_FORMAT: 'json' }, true);
    assert.equal(typeof JSON.parse(asked.split(/\r?\n/).find((text) => text.includes('navi is listening'))!).level, 'number');
  },
);
