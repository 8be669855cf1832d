import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, release, totalmem } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { NAVI_SERVER, ROOT } from './processes.ts';

/** Where and how a result was measured; printed with every result. */
export interface Machine {
  node: string;
  cpuModel: string;
  cores: number;
  memoryGiB: number;
  kernel: string;
  /** Load average when the benchmark started: a busy machine explains noisy numbers. */
  loadAverage1m: number;
  openFileLimit: string;
  ephemeralPorts: string;
}

export interface DatabaseConditions {
  kind: 'sqlite';
  /** As set by the service (read from its db/sqlite.ts so the report cannot drift from the code). */
  synchronous: string;
  journalMode: string;
  /** File system of the database file: fsync on tmpfs costs nothing and would flatter the numbers. */
  fileSystem: string;
}

export function machine(): Machine {
  return {
    node: process.version,
    cpuModel: cpus()[0]?.model.trim() ?? 'unknown',
    cores: availableParallelism(),
    memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    kernel: release(),
    loadAverage1m: Math.round(loadavg()[0]! * 100) / 100,
    openFileLimit: shell('sh', ['-c', 'echo "$(ulimit -Sn) (hard $(ulimit -Hn))"']),
    ephemeralPorts: readOr('/proc/sys/net/ipv4/ip_local_port_range').replace(/\s+/, '-'),
  };
}

export function databaseConditions(databaseDir: string): DatabaseConditions {
  const source = readOr(join(dirname(NAVI_SERVER), 'db/sqlite.ts'));
  return {
    kind: 'sqlite',
    synchronous: /synchronous\s*=\s*(\w+)/i.exec(source)?.[1]?.toUpperCase() ?? 'unknown',
    journalMode: /journal_mode\s*=\s*(\w+)/i.exec(source)?.[1]?.toUpperCase() ?? 'unknown',
    fileSystem: shell('df', ['--output=fstype', databaseDir]).split('\n').at(-1) ?? 'unknown',
  };
}

function readOr(path: string): string {
  try {
    return readFileSync(path, 'utf8').trim();
  } catch {
    return 'unknown';
  }
}

function shell(command: string, args: string[]): string {
  try {
    return execFileSync(command, args, { encoding: 'utf8' }).trim();
  } catch {
    return 'unknown';
  }
}

/**
 * Connections the kernel dropped because a listen backlog was full
 * (TcpExt ListenDrops, machine-wide): a dropped SYN is retried after a
 * second, which would show up as a slow connect.
 */
export function listenDrops(): number {
  const [names, values] = readOr('/proc/net/netstat')
    .split('\n')
    .filter((line) => line.startsWith('TcpExt:'));
  const index = names?.split(' ').indexOf('ListenDrops') ?? -1;
  return index < 0 ? Number.NaN : Number(values?.split(' ')[index]);
}

/** Busy and total CPU time of the whole machine so far (jiffies, all cores), from /proc/stat. */
export function machineCpu(): { busy: number; total: number } {
  const fields = (readOr('/proc/stat').split('\n')[0] ?? '').split(/\s+/).slice(1).map(Number);
  const total = fields.reduce((a, b) => a + b, 0);
  // idle and iowait
  const idle = (fields[3] ?? 0) + (fields[4] ?? 0);
  return { busy: total - idle, total };
}

/** Share of all cores busy between two machineCpu() snapshots, in percent of one core (2 cores fully busy = 200%). */
export function machineBusyPercent(before: { busy: number; total: number }, after: { busy: number; total: number }): number {
  const total = after.total - before.total;
  return total <= 0 ? Number.NaN : ((after.busy - before.busy) / total) * 100 * availableParallelism();
}

/** Which code was measured: this checkout's commit (and whether src/ had uncommitted changes), or BENCH_SERVER. */
export function serviceUnderTest(): string {
  const path = relative(ROOT, NAVI_SERVER);
  if (path.startsWith('..')) return `${NAVI_SERVER} (BENCH_SERVER)`;
  const commit = shell('git', ['-C', ROOT, 'rev-parse', '--short', 'HEAD']);
  const dirty = shell('git', ['-C', ROOT, 'status', '--porcelain', '--', 'src']) !== '';
  return `${path} at ${commit}${dirty ? ' with uncommitted changes in src/' : ''}`;
}
