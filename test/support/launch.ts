import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from './server-process.ts';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/**
 * A command as a platform would launch it (./navi start, the image's CMD,
 * Railway's start command, a Procfile line through sh -c), from the
 * repository root, with only the environment given (and this Node first on
 * PATH). `child.pid` is exactly the process the signal goes to.
 */
export class Launched {
  readonly child: ChildProcess;
  readonly port: number;
  readonly url: string;
  readonly exited: Promise<number | null>;
  output = '';

  private constructor(child: ChildProcess, port: number) {
    this.child = child;
    this.port = port;
    this.url = `http://127.0.0.1:${port}`;
    child.stdout!.on('data', (chunk: Buffer) => (this.output += chunk.toString()));
    child.stderr!.on('data', (chunk: Buffer) => (this.output += chunk.toString()));
    this.exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
  }

  static async start(argv: string[], env: Record<string, string>): Promise<Launched> {
    const port = await freePort();
    const child = spawn(argv[0]!, argv.slice(1), {
      cwd: ROOT,
      env: {
        PATH: `${dirname(process.execPath)}:${process.env.PATH ?? ''}`,
        LOG_LEVEL: 'info',
        // A test machine busy with other runs is not an overloaded service.
        LOAD_SHED_EVENT_LOOP_DELAY_MS: '0',
        ...env,
        HOST: '127.0.0.1',
        PORT: String(port),
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const launched = new Launched(child, port);
    await Promise.race([
      launched.waitFor(/navi is listening/, 30_000),
      launched.exited.then((code) => {
        throw new Error(`${argv.join(' ')} exited with ${code} before listening:\n${launched.output}`);
      }),
    ]);
    return launched;
  }

  waitFor(pattern: RegExp, timeoutMs = 10_000): Promise<void> {
    return new Promise((resolve, reject) => {
      const started = Date.now();
      const check = () => {
        if (pattern.test(this.output)) return resolve();
        if (Date.now() - started > timeoutMs) return reject(new Error(`no ${pattern} in output:\n${this.output}`));
        setTimeout(check, 20);
      };
      check();
    });
  }

  /** The command line of the process the platform would signal (/proc/<pid>/cmdline). */
  commandLine(): string[] {
    return readFileSync(`/proc/${this.child.pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
  }

  /** Stops it as a last resort (a test that failed half-way must not leave a server behind). */
  kill(): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
  }
}

/** Instructions of a Containerfile, continuation lines joined: [['ENV', 'A=1 B=2'], ['CMD', '["node", ...]'], ...]. */
export function containerfileInstructions(path: string): Array<[string, string]> {
  const text = readFileSync(path, 'utf8').replace(/\\\n/g, ' ');
  return text
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line && !line.startsWith('#'))
    .map((line) => {
      const [keyword, ...rest] = line.split(/\s+/);
      return [keyword!.toUpperCase(), rest.join(' ')];
    });
}
