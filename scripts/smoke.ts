/**
 * The smoke test for a deployment: `./navi smoke [BASE_URL]` (default
 * http://127.0.0.1:3000). It plays the story the apps depend on through the
 * public HTTP API and the WebSocket only: two people register, pair with a
 * code, the recipient's socket says hello, the sender taps, the tap arrives
 * live and is in the history; then it deletes both accounts. Each step is
 * printed with its time; the first failure stops the story with one line
 * saying what went wrong, the accounts it made are deleted whatever happened,
 * and the exit code is 0 only when every step, clean-up included, passed.
 *
 * Of the WebSocket protocol it relies only on a `hello` frame after connecting
 * and a `tap` frame whose `tap.id` is the tap's id.
 */
import { parseArgs } from 'node:util';
import WebSocket from 'ws';

const USAGE = 'usage: ./navi smoke [BASE_URL] [--timeout SECONDS]   (default http://127.0.0.1:3000, 10 s per step)';

interface Session {
  userId: string;
  accessToken: string;
}

interface Frame {
  type?: unknown;
  tap?: { id?: unknown };
}

/** A step's failure, worded for the person reading the output. */
class StepError extends Error {}

class Smoke {
  readonly #base: URL;
  readonly #timeoutMs: number;
  readonly #write: (line: string) => void;
  readonly #accounts: Array<{ label: string; session: Session }> = [];
  #socket: WebSocket | undefined;

  constructor(base: URL, timeoutMs: number, write: (line: string) => void) {
    this.#base = base;
    this.#timeoutMs = timeoutMs;
    this.#write = write;
  }

  /** Runs the story, then the clean-up; returns the first failure, if any. */
  async run(): Promise<string | undefined> {
    let failure: string | undefined;
    try {
      await this.#story();
    } catch (error) {
      failure = error instanceof StepError ? error.message : `unexpected: ${String(error)}`;
    }
    const cleanup = await this.#cleanUp();
    return failure ?? cleanup;
  }

  async #story(): Promise<void> {
    const sender = await this.#step('register the sender', () => this.#register('navi smoke test (sender)'));
    this.#accounts.push({ label: 'the sender', session: sender });
    const recipient = await this.#step('register the recipient', () => this.#register('navi smoke test (recipient)'));
    this.#accounts.push({ label: 'the recipient', session: recipient });

    const code = await this.#step('sender shows a pairing code', async () => {
      const body = await this.#call<{ code?: unknown }>('POST', 'v1/pairing-codes', sender, undefined, 201);
      if (typeof body.code !== 'string') throw new StepError('the answer has no code');
      return body.code;
    });
    await this.#step('recipient redeems it', () => this.#call('POST', 'v1/pairings', recipient, { code }, 201));

    const socket = await this.#step('recipient socket says hello', () => this.#connect(recipient));
    const tapArrives = socket.waitFor((frame) => frame.type === 'tap' && typeof frame.tap === 'object' && frame.tap?.id !== undefined);
    const tapSentAt = performance.now();
    const tapId = await this.#step('sender taps', async () => {
      const body = await this.#call<{ tap?: { id?: unknown } }>(
        'POST',
        'v1/taps',
        sender,
        { to: recipient.userId, intensity: 'light', pattern: 'single' },
        201,
      );
      if (typeof body.tap?.id !== 'string') throw new StepError('the answer has no tap.id');
      return body.tap.id;
    });
    await this.#step(
      'recipient gets it live',
      async () => {
        let frame = await tapArrives.next();
        while (frame.tap?.id !== tapId) frame = await tapArrives.next();
      },
      tapSentAt,
    );
    await this.#step('history has it', async () => {
      const body = await this.#call<{ taps?: Array<{ id?: unknown }> }>('GET', 'v1/taps?limit=20', recipient, undefined, 200);
      if (!Array.isArray(body.taps) || !body.taps.some((tap) => tap.id === tapId))
        throw new StepError(`tap ${tapId} is not in GET /v1/taps`);
    });
  }

  /** Deletes every account it made, even after a failure; returns the first clean-up failure. */
  async #cleanUp(): Promise<string | undefined> {
    this.#socket?.terminate();
    let failure: string | undefined;
    for (const { label, session } of this.#accounts) {
      try {
        await this.#step(`delete ${label}`, () => this.#call('DELETE', 'v1/me', session, undefined, 204));
      } catch (error) {
        failure ??= error instanceof StepError ? error.message : String(error);
      }
    }
    return failure;
  }

  async #step<T>(name: string, work: () => Promise<T>, startedAt = performance.now()): Promise<T> {
    const label = name.padEnd(30);
    try {
      const result = await this.#withTimeout(work());
      this.#write(`  ✔ ${label} ${elapsed(startedAt)}`);
      return result;
    } catch (error) {
      const reason = error instanceof StepError ? error.message : String(error);
      this.#write(`  ✘ ${label} ${elapsed(startedAt)}  ${reason}`);
      throw new StepError(`${name}: ${reason}`);
    }
  }

  #withTimeout<T>(work: Promise<T>): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => reject(new StepError(`no answer within ${this.#timeoutMs / 1000} s`)), this.#timeoutMs);
    });
    return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
  }

  async #register(name: string): Promise<Session> {
    const body = await this.#call<Partial<Session>>('POST', 'v1/auth/register', undefined, { platform: 'ios', name }, 201);
    if (typeof body.userId !== 'string' || typeof body.accessToken !== 'string')
      throw new StepError('the answer has no userId or accessToken');
    return { userId: body.userId, accessToken: body.accessToken };
  }

  async #call<T>(method: string, path: string, session: Session | undefined, body: unknown, expected: number): Promise<T> {
    const url = new URL(path, this.#base);
    let response: Response;
    try {
      response = await fetch(url, {
        method,
        headers: {
          ...(session ? { authorization: `Bearer ${session.accessToken}` } : {}),
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(this.#timeoutMs),
        redirect: 'manual',
      });
    } catch (error) {
      throw new StepError(unreachable(this.#base, error));
    }
    const text = await response.text();
    const what = `${method} /${path.split('?')[0]}`;
    if (response.status !== expected)
      throw new StepError(`${what} answered ${response.status}${problemSummary(text)}, expected ${expected}`);
    if (text === '') return {} as T;
    try {
      return JSON.parse(text) as T;
    } catch {
      throw new StepError(`${what} answered ${response.status} with a body that is not JSON`);
    }
  }

  /** Opens the socket and resolves once a `hello` frame arrived. */
  async #connect(session: Session): Promise<FrameStream> {
    const url = new URL('v1/ws', this.#base);
    url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
    const socket = new WebSocket(url, { headers: { authorization: `Bearer ${session.accessToken}` }, handshakeTimeout: this.#timeoutMs });
    this.#socket = socket;
    const frames = new FrameStream(socket);
    const hello = frames.waitFor((frame) => frame.type === 'hello');
    await new Promise<void>((resolve, reject) => {
      socket.once('open', () => resolve());
      socket.once('unexpected-response', (_request, response) => {
        reject(
          new StepError(
            `the WebSocket upgrade of /v1/ws was answered ${response.statusCode} (does a proxy on the way pass WebSocket upgrades?)`,
          ),
        );
      });
      socket.once('error', (error) => reject(new StepError(unreachable(this.#base, error))));
    });
    await hello.next();
    return frames;
  }
}

/** The frames of one socket, for waiting on the ones that match. */
class FrameStream {
  readonly #waiters = new Set<(frame: Frame | Error) => void>();
  #ended: Error | undefined;

  constructor(socket: WebSocket) {
    // Failures are reported by the step that waits; a late one (after terminate) must not crash the run.
    socket.on('error', () => {});
    socket.on('message', (data) => {
      let frame: Frame;
      try {
        frame = JSON.parse(data.toString()) as Frame;
      } catch {
        return;
      }
      for (const waiter of this.#waiters) waiter(frame);
    });
    socket.on('close', (code, reason) => {
      this.#ended = new StepError(`the socket closed (${code}${reason.length > 0 ? ` ${reason.toString()}` : ''})`);
      for (const waiter of this.#waiters) waiter(this.#ended);
    });
  }

  /** Frames matching `match` from now on, in order, each taken with `next()`. */
  waitFor(match: (frame: Frame) => boolean): { next(): Promise<Frame> } {
    const queue: Array<Frame | Error> = [];
    let wake: (() => void) | undefined;
    this.#waiters.add((frame) => {
      if (frame instanceof Error || match(frame)) queue.push(frame);
      wake?.();
    });
    const next = async (): Promise<Frame> => {
      while (queue.length === 0) {
        if (this.#ended) throw this.#ended;
        await new Promise<void>((resolve) => (wake = resolve));
      }
      const frame = queue.shift()!;
      if (frame instanceof Error) throw frame;
      return frame;
    };
    return { next };
  }
}

function unreachable(base: URL, error: unknown): string {
  const cause = (error as { cause?: { code?: unknown } }).cause ?? error;
  const code = (cause as { code?: unknown }).code;
  if ((error as { name?: unknown }).name === 'TimeoutError') return `${base.origin} did not answer in time`;
  if (code === 'ECONNREFUSED') return `nothing is listening at ${base.origin} (ECONNREFUSED): is the service running?`;
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return `${base.hostname} cannot be resolved (${String(code)})`;
  return `cannot reach ${base.origin}: ${typeof code === 'string' ? code : (cause as Error).message}`;
}

function problemSummary(text: string): string {
  try {
    const problem = JSON.parse(text) as { code?: unknown; detail?: unknown };
    if (typeof problem.code === 'string') return ` ${problem.code}${typeof problem.detail === 'string' ? ` (${problem.detail})` : ''}`;
  } catch {
    // not a problem document
  }
  return '';
}

const elapsed = (startedAt: number) => `${Math.round(performance.now() - startedAt)} ms`.padStart(7);

function parseCommandLine(argv: string[]): { base: URL; timeoutMs: number } | string {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: { timeout: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
    });
  } catch (error) {
    return (error as Error).message;
  }
  if (parsed.values.help) return '';
  if (parsed.positionals.length > 1) return 'give at most one BASE_URL';
  const timeoutSeconds = parsed.values.timeout === undefined ? 10 : Number(parsed.values.timeout);
  if (!Number.isFinite(timeoutSeconds) || timeoutSeconds <= 0 || timeoutSeconds > 600)
    return '--timeout must be a number of seconds, at most 600';
  let base: URL;
  try {
    base = new URL(parsed.positionals[0] ?? 'http://127.0.0.1:3000');
  } catch {
    return `not a URL: ${parsed.positionals[0]}`;
  }
  if (base.protocol !== 'http:' && base.protocol !== 'https:') return 'BASE_URL must be http:// or https://';
  // A service mounted under a path (https://example.com/navi) keeps it: paths are joined to it.
  if (!base.pathname.endsWith('/')) base.pathname += '/';
  base.search = '';
  base.hash = '';
  return { base, timeoutMs: timeoutSeconds * 1000 };
}

const options = parseCommandLine(process.argv.slice(2));
if (typeof options === 'string') {
  process.stderr.write(`${options ? `navi smoke: ${options}\n` : ''}${USAGE}\n`);
  process.exit(options ? 2 : 0);
}
const write = (line: string) => process.stdout.write(`${line}\n`);
write(`navi smoke test against ${options.base.href}`);
const startedAt = performance.now();
const failure = await new Smoke(options.base, options.timeoutMs, write).run();
if (failure === undefined) {
  write(`passed in ${Math.round(performance.now() - startedAt)} ms`);
} else {
  process.stderr.write(`navi smoke: FAILED at ${failure}\n`);
  process.exitCode = 1;
}
