import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * Everything a benchmark leaves behind (child processes, temporary
 * databases) is registered here, so a crash or Ctrl-C cannot leave a server
 * holding 20,000 sockets or a database in /tmp.
 */
const children = new Set<ChildProcess>();
const tempDirs = new Set<string>();
let installed = false;

export function track(child: ChildProcess): ChildProcess {
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

/** A fresh directory under the OS temp dir (BENCH_TMPDIR overrides: it must be a real disk for fsync to mean anything). */
export function makeTempDir(prefix: string): string {
  const dir = mkdtempSync(join(process.env.BENCH_TMPDIR ?? tmpdir(), `navi-bench-${prefix}-`));
  tempDirs.add(dir);
  return dir;
}

export function removeTempDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
  tempDirs.delete(dir);
}

/** Synchronous, so it also works from process.on('exit'). */
export function cleanUpNow(): void {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  children.clear();
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
  tempDirs.clear();
}

export function installCleanup(): void {
  if (installed) return;
  installed = true;
  process.once('exit', cleanUpNow);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(signal, () => {
      process.stderr.write(`\nbench: ${signal}, stopping child processes and removing temporary files\n`);
      cleanUpNow();
      process.exit(130);
    });
  }
}
