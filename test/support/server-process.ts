import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, type AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';

const SERVER = fileURLToPath(new URL('../../src/server.ts', import.meta.url));

export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** The real service (`node src/server.ts`) as a child process, with its output captured. */
export class ServerProcess {
  readonly child: ChildProcess;
  readonly url: string;
  output = '';
  readonly exited: Promise<number | null>;

  private constructor(child: ChildProcess, port: number) {
    this.child = child;
    this.url = `http://127.0.0.1:${port}`;
    child.stdout!.on('data', (chunk: Buffer) => (this.output += chunk.toString()));
    child.stderr!.on('data', (chunk: Buffer) => (this.output += chunk.toString()));
    this.exited = new Promise((resolve) => child.on('exit', (code) => resolve(code)));
  }

  /** Starts the server and waits until it listens (or fails to start). */
  static async start(env: Record<string, string>): Promise<ServerProcess> {
    const port = await freePort();
    const child = spawn(process.execPath, [SERVER], {
      // No load shedding on event-loop delay: a test machine busy with other runs is not an overloaded service.
      env: {
        PATH: process.env.PATH ?? '',
        HOST: '127.0.0.1',
        PORT: String(port),
        LOG_LEVEL: 'info',
        LOAD_SHED_EVENT_LOOP_DELAY_MS: '0',
        ...env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const server = new ServerProcess(child, port);
    await Promise.race([
      server.waitForOutput(/navi is listening/, 20_000),
      server.exited.then((code) => {
        throw new Error(`server exited with ${code} before listening:\n${server.output}`);
      }),
    ]);
    return server;
  }

  /** Runs the service until it exits; for start-up failures. `output` is both streams, `stderr` the messages for people. */
  static async run(env: Record<string, string>): Promise<{ code: number | null; output: string; stderr: string }> {
    const child = spawn(process.execPath, [SERVER], { env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      stderr += chunk.toString();
    });
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    return { code, output, stderr };
  }

  waitForOutput(pattern: RegExp, timeoutMs = 10_000): Promise<void> {
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

  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
    this.child.kill(signal);
    return this.exited;
  }

  /** JSON over HTTP, as an app would speak it. */
  async call(method: string, path: string, options: { token?: string; body?: unknown } = {}) {
    const response = await fetch(`${this.url}${path}`, {
      method,
      headers: {
        ...(options.token ? { authorization: `Bearer ${options.token}` } : {}),
        ...(options.body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      body: options.body === undefined ? undefined : JSON.stringify(options.body),
    });
    const text = await response.text();
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    return { status: response.status, headers: response.headers, body: (text ? JSON.parse(text) : undefined) as any };
  }
}
