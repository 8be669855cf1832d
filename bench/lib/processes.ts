import { execFileSync, fork, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { connect, createServer, type AddressInfo } from 'node:net';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { track } from './cleanup.ts';
import { sleep } from './stats.ts';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
/**
 * The service under test: this checkout's, or BENCH_SERVER (the server.ts of
 * another checkout, e.g. the last commit exported with `git archive`, to
 * compare before and after a change with the same harness).
 */
export const NAVI_SERVER = resolve(process.env.BENCH_SERVER ?? join(ROOT, 'src/server.ts'));
const PROBE = join(ROOT, 'bench/lib/probe.ts');
const OUTPUT_KEPT = 64 * 1024;

/**
 * The rate limits a benchmark must not hit. RATE_LIMIT_TAPS_PER_MINUTE is at
 * its schema maximum (10,000,000 per user per minute, config.ts), which no
 * run here comes near.
 */
export const BENCH_LIMITS = {
  RATE_LIMIT_TAPS_PER_MINUTE: '10000000',
  RATE_LIMIT_AUTH_PER_MINUTE: '1000000',
} as const;

/** Production serves /metrics only with a token (or on its own port): the harness scrapes with this one. */
export const BENCH_METRICS_TOKEN = randomBytes(24).toString('hex');

export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

export interface MemorySample {
  /** VmRSS of /proc/<pid>/status. */
  rssKiB: number;
  /** process.memoryUsage() inside the server after a forced GC, when probed. */
  heapUsed?: number;
  external?: number;
  arrayBuffers?: number;
}

export interface StartOptions {
  /** Variables on top of the process's own (the harness passes no others: the caller's shell must not leak in). */
  env: Record<string, string>;
  /** Preload bench/lib/probe.ts (memory after GC, CPU profiles) with an IPC channel and --expose-gc. */
  probe?: boolean;
  startTimeoutMs?: number;
}

/**
 * A server under test, in its own process: the service (`node src/server.ts`)
 * or one of the bare baselines in bench/. Ready when its port accepts.
 */
export class ServerProcess {
  readonly name: string;
  readonly child: ChildProcess;
  readonly port: number;
  readonly url: string;
  readonly exited: Promise<number | null>;
  readonly #probed: boolean;
  #output = '';
  #nextProbe = 1;

  private constructor(name: string, child: ChildProcess, port: number, probed: boolean) {
    this.name = name;
    this.#probed = probed;
    this.child = child;
    this.port = port;
    this.url = `http://127.0.0.1:${port}`;
    const keep = (chunk: Buffer) => {
      this.#output = (this.#output + chunk.toString()).slice(-OUTPUT_KEPT);
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    this.exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
  }

  /** The real service with production settings on a fresh SQLite file. */
  static startNavi(databasePath: string, options: Omit<StartOptions, 'env'> & { env?: Record<string, string> } = {}) {
    return ServerProcess.start('navi', NAVI_SERVER, {
      ...options,
      env: {
        NODE_ENV: 'production',
        JWT_SECRET: randomBytes(48).toString('base64url'),
        DATABASE_URL: databasePath,
        LOG_LEVEL: 'warn',
        METRICS_TOKEN: BENCH_METRICS_TOKEN,
        // Stop at once: no load balancer to drain from here.
        SHUTDOWN_DELAY_SECONDS: '0',
        ...BENCH_LIMITS,
        ...options.env,
      },
    });
  }

  static async start(name: string, script: string, options: StartOptions): Promise<ServerProcess> {
    const port = await freePort();
    const execArgv = options.probe ? ['--expose-gc', '--import', PROBE] : [];
    const child = track(
      spawn(process.execPath, [...execArgv, script], {
        cwd: ROOT,
        env: { PATH: process.env.PATH ?? '', HOST: '127.0.0.1', PORT: String(port), ...options.env },
        stdio: ['ignore', 'pipe', 'pipe', ...(options.probe ? (['ipc'] as const) : [])],
      }),
    );
    const server = new ServerProcess(name, child, port, options.probe ?? false);
    await server.#waitUntilListening(options.startTimeoutMs ?? 30_000);
    return server;
  }

  get pid(): number {
    return this.child.pid!;
  }

  /** The last 64 KiB the process wrote (the service logs warnings and errors only). */
  get output(): string {
    return this.#output;
  }

  /** The service's error log lines (pino level >= 50), for a failure message. */
  errorLines(max = 3): string[] {
    return this.#output
      .split('\n')
      .filter((line) => /"level":(50|60)/.test(line))
      .slice(0, max)
      .map((line) => line.slice(0, 600));
  }

  async #waitUntilListening(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let exitCode: number | null | undefined;
    void this.exited.then((code) => (exitCode = code));
    while (Date.now() < deadline) {
      if (exitCode !== undefined) throw new Error(`${this.name} exited with ${exitCode} before listening:\n${this.#output}`);
      if (await canConnect(this.port)) return;
      await sleep(50);
    }
    throw new Error(`${this.name} did not listen within ${timeoutMs} ms:\n${this.#output}`);
  }

  /** CPU seconds (user + system) the process has used so far, from /proc/<pid>/stat. */
  cpuSeconds(): number {
    const stat = readFileSync(`/proc/${this.pid}/stat`, 'utf8');
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / clockTicksPerSecond();
  }

  async memory(): Promise<MemorySample> {
    const answer = this.#probed ? await this.#ask({ type: 'bench:memory' }) : undefined;
    const usage = answer?.usage as NodeJS.MemoryUsage | undefined;
    if (answer && !answer.gc) throw new Error(`${this.name}: the probe runs without --expose-gc`);
    return {
      rssKiB: rssKiB(this.pid),
      ...(usage ? { heapUsed: usage.heapUsed, external: usage.external, arrayBuffers: usage.arrayBuffers } : {}),
    };
  }

  /** Profiles from now until stopProfile (the probe's inspector session samples every 1 ms). */
  async startProfile(): Promise<void> {
    await this.#ask({ type: 'bench:profile-start' });
  }

  /** Writes the .cpuprofile to `path`. */
  async stopProfile(path: string): Promise<string> {
    await this.#ask({ type: 'bench:profile-stop', path });
    return path;
  }

  /** Writes a heap snapshot (after a GC) to `path`. */
  async heapSnapshot(path: string): Promise<string> {
    await this.#ask({ type: 'bench:heap-snapshot', path }, 300_000);
    return path;
  }

  /** Measures how late the server's event loop runs a 10 ms timer, until stopLoopDelay. */
  async startLoopDelay(): Promise<void> {
    await this.#ask({ type: 'bench:loop-delay-start' });
  }

  async stopLoopDelay(): Promise<{ p50: number; p99: number; max: number }> {
    const answer = await this.#ask({ type: 'bench:loop-delay-stop' });
    return answer.loopDelayMs as { p50: number; p99: number; max: number };
  }

  #ask(request: { type: string } & Record<string, unknown>, timeoutMs = 60_000): Promise<Record<string, unknown>> {
    if (!this.#probed) throw new Error(`${this.name} was started without the probe`);
    const id = this.#nextProbe++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${this.name}: no answer from the probe to ${request.type}`)), timeoutMs);
      const onMessage = (message: { type?: string; id?: number; error?: string }) => {
        if (message.type !== request.type || message.id !== id) return;
        clearTimeout(timer);
        this.child.off('message', onMessage);
        if (message.error) reject(new Error(`${this.name}: ${request.type} failed: ${message.error}`));
        else resolve(message);
      };
      this.child.on('message', onMessage);
      this.child.send!({ ...request, id });
    });
  }

  /** SIGTERM (the service drains and exits), SIGKILL if it takes too long. */
  async stop(timeoutMs = 20_000): Promise<number | null> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), timeoutMs);
    const code = await this.exited;
    clearTimeout(timer);
    return code;
  }
}

/** A bench/ script as a child with an IPC channel (the load-generating helpers). */
export function forkHelper(script: string, args: string[] = []): ChildProcess {
  return track(fork(join(ROOT, 'bench', script), args, { cwd: ROOT, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }));
}

export function rssKiB(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const match = /^VmRSS:\s+(\d+) kB$/m.exec(status);
  if (!match) throw new Error(`no VmRSS in /proc/${pid}/status`);
  return Number(match[1]);
}

let ticks: number | undefined;
function clockTicksPerSecond(): number {
  if (ticks === undefined) {
    try {
      ticks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      ticks = 100;
    }
  }
  return ticks;
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}
