import { randomUUID } from 'node:crypto';
import { Agent, request } from 'node:http';
import { join } from 'node:path';
import { WebSocket } from 'ws';
import type { Account } from './lib/api.ts';
import { makeTempDir, removeTempDir } from './lib/cleanup.ts';
import { readOptions, type Flags } from './lib/options.ts';
import { ServerProcess } from './lib/processes.ts';
import type { BenchResult } from './lib/report.ts';
import { count, fixed, mapLimit, sleep, summarize, type Summary } from './lib/stats.ts';

/**
 * The plan's load scenarios, each against a freshly started service and
 * judged by the plan's criteria: 500 concurrent users, 1,000 taps per
 * minute, p99 < 500 ms (a tap from the sender's POST to the recipient's
 * socket), API p95 < 200 ms. Only `hello`, `tap` and `ack` frames are used
 * on the socket. The defaults are the plan's figures; --duration shortens
 * the two timed scenarios for a quick check.
 */
export const scenarioDefaults = {
  /** Scenario 1: users registering at once. */
  registrations: 100,
  /** Scenario 2: couples pairing at once (one shows a code, the other types it). */
  pairings: 50,
  /** Scenarios 3 and 5: taps per minute over all senders, open loop. */
  tapsPerMinute: 1000,
  /** Scenario 3: couples, recipients connected and acking. */
  couples: 50,
  /** Scenario 4: WebSockets opened at once and held. */
  sockets: 500,
  /** Scenario 5: users doing all of it (register, pair, connect, tap, read history). */
  users: 500,
  /** Seconds of tapping in scenarios 3 and 5. */
  duration: 30,
  /** Seconds scenario 4 holds its sockets. */
  hold: 10,
};
export type ScenarioOptions = typeof scenarioDefaults;

const API_P95_MS = 200;
const TAP_P99_MS = 500;

/** Every HTTP exchange of a scenario, timed from the request to the end of the response. */
class Http {
  readonly #agent = new Agent({ keepAlive: true, maxSockets: 1000 });
  readonly #base: string;
  readonly latencies: number[] = [];
  readonly failures: string[] = [];

  constructor(base: string) {
    this.#base = base;
  }

  async call<T>(method: string, path: string, options: { token?: string; body?: unknown } = {}): Promise<T | undefined> {
    const body = options.body === undefined ? undefined : JSON.stringify(options.body);
    const started = performance.now();
    const { status, text } = await new Promise<{ status: number; text: string }>((resolve) => {
      const req = request(
        new URL(path, this.#base),
        {
          agent: this.#agent,
          method,
          headers: {
            ...(options.token ? { authorization: `Bearer ${options.token}` } : {}),
            ...(body === undefined ? {} : { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) }),
          },
        },
        (response) => {
          let text = '';
          response.setEncoding('utf8');
          response.on('data', (chunk: string) => (text += chunk));
          response.once('end', () => resolve({ status: response.statusCode ?? 0, text }));
          response.once('error', (error) => resolve({ status: 0, text: error.message }));
        },
      );
      req.once('error', (error) => resolve({ status: 0, text: error.message }));
      req.end(body);
    });
    this.latencies.push(performance.now() - started);
    if (status < 200 || status >= 300) {
      if (this.failures.length < 2000)
        this.failures.push(`${method} ${path.replace(/[0-9a-f-]{36}/g, ':id')} ${status} ${text.slice(0, 120)}`);
      return undefined;
    }
    return (text ? JSON.parse(text) : undefined) as T;
  }

  close(): void {
    this.#agent.destroy();
  }
}

/** A device's socket: resolves once `hello` arrived; stamps and acks every tap addressed to it. */
class Device {
  readonly socket: WebSocket;
  readonly opened: Promise<number>;
  readonly arrivals = new Map<string, number>();
  closedEarly = 0;
  #closing = false;

  constructor(wsUrl: string, account: Account) {
    const started = performance.now();
    this.socket = new WebSocket(wsUrl, { headers: { authorization: `Bearer ${account.accessToken}` }, perMessageDeflate: false });
    this.opened = new Promise((resolve, reject) => {
      this.socket.once('unexpected-response', (_req, res) => reject(new Error(`upgrade refused: ${res.statusCode}`)));
      this.socket.once('error', reject);
      this.socket.on('message', (data) => {
        const at = performance.now();
        const frame = JSON.parse(data.toString()) as { type: string; tap?: { id: string; to: string } };
        if (frame.type === 'hello') resolve(at - started);
        if (frame.type !== 'tap' || frame.tap?.to !== account.userId || this.arrivals.has(frame.tap.id)) return;
        this.arrivals.set(frame.tap.id, at);
        this.socket.send(JSON.stringify({ type: 'ack', tapId: frame.tap.id, status: 'delivered' }));
      });
    });
    this.socket.on('close', () => {
      if (!this.#closing) this.closedEarly++;
    });
  }

  close(): void {
    this.#closing = true;
    this.socket.terminate();
  }
}

interface Verdict {
  scenario: string;
  load: string;
  measured: string;
  criterion: string;
  met: boolean;
}

async function register(http: Http, count: number, concurrency: number): Promise<Account[]> {
  const accounts = await mapLimit(Array.from({ length: count }), concurrency, () =>
    http.call<Account>('POST', '/v1/auth/register', { body: { platform: 'ios' } }),
  );
  return accounts.filter((a): a is Account => a !== undefined);
}

async function pairUp(http: Http, accounts: Account[], concurrency: number): Promise<Array<[Account, Account]>> {
  const couples: Array<[Account, Account]> = [];
  for (let i = 0; i + 1 < accounts.length; i += 2) couples.push([accounts[i]!, accounts[i + 1]!]);
  const paired = await mapLimit(couples, concurrency, async ([a, b]) => {
    const code = await http.call<{ code: string }>('POST', '/v1/pairing-codes', { token: a.accessToken });
    if (!code) return undefined;
    const done = await http.call('POST', '/v1/pairings', { token: b.accessToken, body: { code: code.code } });
    return done ? ([a, b] as [Account, Account]) : undefined;
  });
  return paired.filter((c): c is [Account, Account] => c !== undefined);
}

/** Open-loop taps at `perMinute` for `seconds`, round robin over the couples; optional history reads beside them. */
async function tapFor(http: Http, couples: Array<[Account, Account]>, perMinute: number, seconds: number, readHistory = false) {
  if (couples.length === 0) throw new Error(`no couple could be paired: ${http.failures.slice(0, 3).join('; ')}`);
  const sent: Array<{ id: string; t0: number; ok: boolean }> = [];
  const interval = 60_000 / perMinute;
  const total = Math.round((perMinute / 60) * seconds);
  const inFlight: Array<Promise<unknown>> = [];
  const start = performance.now();
  for (let i = 0; i < total; i++) {
    const due = start + i * interval;
    const wait = due - performance.now();
    if (wait > 1) await sleep(wait);
    const [sender, recipient] = couples[i % couples.length]!;
    const tap = { id: randomUUID(), t0: performance.now(), ok: false };
    sent.push(tap);
    const body = { id: tap.id, to: recipient.userId, intensity: 'medium', pattern: 'heartbeat' };
    inFlight.push(http.call('POST', '/v1/taps', { token: sender.accessToken, body }).then((r) => (tap.ok = r !== undefined)));
    if (readHistory && i % 5 === 0) inFlight.push(http.call('GET', '/v1/taps?limit=20', { token: recipient.accessToken }));
  }
  await Promise.all(inFlight);
  return { sent, seconds: (performance.now() - start) / 1000 };
}

function endToEnd(sent: Array<{ id: string; t0: number; ok: boolean }>, devices: Device[]) {
  const arrivals = new Map<string, number>();
  for (const device of devices) for (const [id, at] of device.arrivals) arrivals.set(id, at);
  const latencies: number[] = [];
  let missing = 0;
  for (const tap of sent.filter((s) => s.ok)) {
    const at = arrivals.get(tap.id);
    if (at === undefined) missing++;
    else latencies.push(at - tap.t0);
  }
  return { summary: summarize(latencies), missing };
}

/** summarize() has p50/p90/p99; the API criterion is on p95. */
interface Latency {
  values: number[];
  summary: Summary;
  p95: number;
}

function describe(values: number[]): Latency {
  const sorted = Float64Array.from(values).sort();
  const p95 = sorted.length === 0 ? Number.NaN : sorted[Math.min(sorted.length - 1, Math.ceil(0.95 * sorted.length) - 1)]!;
  return { values, summary: summarize(values), p95 };
}

const ms = ({ summary, p95 }: Latency) =>
  `p50 ${fixed(summary.p50, 1)} / p95 ${fixed(p95, 1)} / p99 ${fixed(summary.p99, 1)} / max ${fixed(summary.max, 1)} ms`;

/** One scenario against its own service process. */
async function withService<T>(name: string, work: (server: ServerProcess, http: Http) => Promise<T>): Promise<T> {
  const dir = makeTempDir(`scenario-${name}`);
  const server = await ServerProcess.startNavi(join(dir, 'navi.db'));
  const http = new Http(server.url);
  try {
    // A few requests of each kind first, so a fresh process's JIT warm-up is not measured.
    const warm = await pairUp(http, await register(http, 10, 5), 5);
    await mapLimit(warm, 5, ([a, b]) =>
      http.call('POST', '/v1/taps', { token: a.accessToken, body: { to: b.userId, intensity: 'light', pattern: 'single' } }),
    );
    http.latencies.length = 0;
    return await work(server, http);
  } finally {
    http.close();
    await server.stop();
    removeTempDir(dir);
  }
}

export async function runScenarios(flags: Flags): Promise<BenchResult> {
  const o = readOptions(scenarioDefaults, flags);
  const verdicts: Verdict[] = [];
  const failures: string[] = [];
  const data: Record<string, unknown> = {};
  const wsUrl = (server: ServerProcess) => `ws://127.0.0.1:${server.port}/v1/ws`;
  const noteFailures = (scenario: string, http: Http, server: ServerProcess) => {
    if (http.failures.length > 0)
      failures.push(`${scenario}: ${http.failures.length} requests failed, e.g. ${http.failures.slice(0, 3).join('; ')}`);
    const errors = server.errorLines();
    if (errors.length > 0) failures.push(`${scenario}: the service logged errors, the first: ${errors[0]}`);
  };

  console.error(`bench: scenarios: ${o.registrations} registrations at once`);
  await withService('register', async (server, http) => {
    const accounts = await register(http, o.registrations, o.registrations);
    const latency = describe([...http.latencies]);
    data.register = { accounts: accounts.length, latencyMs: latency.summary, p95: latency.p95 };
    verdicts.push({
      scenario: '1. users registering at once',
      load: `${o.registrations} POST /v1/auth/register in parallel`,
      measured: `${accounts.length} registered; ${ms(latency)}`,
      criterion: `all succeed, API p95 < ${API_P95_MS} ms`,
      met: accounts.length === o.registrations && latency.p95 < API_P95_MS,
    });
    noteFailures('register', http, server);
  });

  console.error(`bench: scenarios: ${o.pairings} pairings at once`);
  await withService('pairing', async (server, http) => {
    const accounts = await register(http, o.pairings * 2, 50);
    http.latencies.length = 0;
    const couples = await pairUp(http, accounts, o.pairings);
    const latency = describe([...http.latencies]);
    data.pairing = { couples: couples.length, latencyMs: latency.summary, p95: latency.p95 };
    verdicts.push({
      scenario: '2. concurrent pairings',
      load: `${o.pairings} couples: code created, then redeemed, all couples at once`,
      measured: `${couples.length} paired; ${ms(latency)} per request`,
      criterion: `all succeed, API p95 < ${API_P95_MS} ms`,
      met: couples.length === o.pairings && latency.p95 < API_P95_MS,
    });
    noteFailures('pairing', http, server);
  });

  console.error(`bench: scenarios: ${o.tapsPerMinute} taps/min for ${o.duration} s, recipients connected`);
  await withService('taps', async (server, http) => {
    const couples = await pairUp(http, await register(http, o.couples * 2, 50), 25);
    const devices = couples.map(([, recipient]) => new Device(wsUrl(server), recipient));
    await Promise.all(devices.map((d) => d.opened));
    http.latencies.length = 0;
    const run = await tapFor(http, couples, o.tapsPerMinute, o.duration);
    await sleep(1000);
    const api = describe([...http.latencies]);
    const e2e = endToEnd(run.sent, devices);
    const rate = (run.sent.filter((s) => s.ok).length / run.seconds) * 60;
    data.taps = { ratePerMinute: rate, apiMs: api.summary, apiP95: api.p95, endToEndMs: e2e.summary, missing: e2e.missing };
    verdicts.push({
      scenario: '3. taps with recipients connected',
      load: `${o.tapsPerMinute} taps/min open loop for ${o.duration} s over ${couples.length} couples; recipients ack`,
      measured: `${count(rate)} taps/min; POST ${fixed(api.p95, 1)} ms p95; POST to frame p99 ${fixed(e2e.summary.p99, 1)} ms (max ${fixed(e2e.summary.max, 1)}); ${e2e.missing} missing`,
      criterion: `1,000 taps/min, API p95 < ${API_P95_MS} ms, p99 < ${TAP_P99_MS} ms, none missing`,
      met: rate >= o.tapsPerMinute * 0.95 && api.p95 < API_P95_MS && e2e.summary.p99 < TAP_P99_MS && e2e.missing === 0,
    });
    if (e2e.missing > 0) failures.push(`taps: ${e2e.missing} taps answered 201 but never reached the recipient`);
    for (const d of devices) d.close();
    noteFailures('taps', http, server);
  });

  console.error(`bench: scenarios: ${o.sockets} WebSockets at once, held ${o.hold} s`);
  await withService('sockets', async (server, http) => {
    const accounts = await register(http, o.sockets, 50);
    const devices = accounts.map((account) => new Device(wsUrl(server), account));
    const opened = await Promise.allSettled(devices.map((d) => d.opened));
    const connectMs = opened.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
    await sleep(o.hold * 1000);
    const stillOpen = devices.filter((d) => d.socket.readyState === WebSocket.OPEN).length;
    const c = describe(connectMs);
    data.sockets = { opened: connectMs.length, stillOpen, connectMs: c.summary };
    verdicts.push({
      scenario: '4. concurrent WebSockets',
      load: `${o.sockets} authenticated sockets opened at once, held ${o.hold} s`,
      measured: `${connectMs.length} reached hello, ${stillOpen} still open after the hold; upgrade to hello ${ms(c)}`,
      criterion: `all ${o.sockets} open and held, connect p99 < ${TAP_P99_MS} ms`,
      met: connectMs.length === o.sockets && stillOpen === o.sockets && c.summary.p99 < TAP_P99_MS,
    });
    for (const d of devices) d.close();
    noteFailures('sockets', http, server);
  });

  console.error(`bench: scenarios: ${o.users} users doing all of it`);
  await withService('mixed', async (server, http) => {
    const started = performance.now();
    const accounts = await register(http, o.users, 100);
    const couples = await pairUp(http, accounts, 100);
    const devices = accounts.map((account) => new Device(wsUrl(server), account));
    const opened = (await Promise.allSettled(devices.map((d) => d.opened))).filter((r) => r.status === 'fulfilled').length;
    const setUpSeconds = (performance.now() - started) / 1000;
    const setUp = describe([...http.latencies]);
    http.latencies.length = 0;
    const run = await tapFor(http, couples, o.tapsPerMinute, o.duration, true);
    await sleep(1000);
    const steady = describe([...http.latencies]);
    const api = describe([...setUp.values, ...steady.values]);
    const e2e = endToEnd(run.sent, devices);
    const rate = (run.sent.filter((s) => s.ok).length / run.seconds) * 60;
    const stillOpen = devices.filter((d) => d.socket.readyState === WebSocket.OPEN).length;
    data.mixed = {
      opened,
      stillOpen,
      setUpSeconds,
      ratePerMinute: rate,
      apiMs: api.summary,
      apiP95: api.p95,
      setUpP95: setUp.p95,
      steadyP95: steady.p95,
      endToEndMs: e2e.summary,
      missing: e2e.missing,
    };
    verdicts.push({
      scenario: '5. concurrent users doing all of it',
      load: `${o.users} users: register (100 at a time), pair (${couples.length} couples), connect every device, then ${o.tapsPerMinute} taps/min for ${o.duration} s with history reads; recipients ack`,
      measured: `${opened} connected (${stillOpen} at the end); set-up ${fixed(setUpSeconds, 1)} s; ${count(rate)} taps/min; API p95 ${fixed(api.p95, 1)} ms over every request (set-up ${fixed(setUp.p95, 1)}, while tapping ${fixed(steady.p95, 1)}); POST to frame p99 ${fixed(e2e.summary.p99, 1)} ms; ${e2e.missing} missing`,
      criterion: `${o.users} concurrent users, 1,000 taps/min, API p95 < ${API_P95_MS} ms, p99 < ${TAP_P99_MS} ms`,
      met:
        opened === o.users &&
        stillOpen === o.users &&
        rate >= o.tapsPerMinute * 0.95 &&
        api.p95 < API_P95_MS &&
        e2e.summary.p99 < TAP_P99_MS &&
        e2e.missing === 0,
    });
    if (e2e.missing > 0) failures.push(`mixed: ${e2e.missing} taps answered 201 but never reached the recipient`);
    for (const d of devices) d.close();
    noteFailures('mixed', http, server);
  });

  for (const v of verdicts) if (!v.met) failures.push(`${v.scenario}: criterion not met (${v.criterion})`);
  return {
    name: 'scenarios',
    title: "The plan's load scenarios, against its criteria",
    conditions: {
      service:
        'one fresh service process per scenario (NODE_ENV=production, LOG_LEVEL=warn, SQLite, rate limits raised, load shedding at its defaults), no APNs',
      clients: 'node:http keep-alive and ws sockets in the harness process, on the same machine',
      criteria: `support ${o.users} concurrent users, ${count(o.tapsPerMinute)} taps/min, tap p99 < ${TAP_P99_MS} ms (POST by the sender to the tap frame at the recipient), API p95 < ${API_P95_MS} ms`,
    },
    tables: [
      {
        columns: ['scenario', 'load', 'measured', 'criterion', 'verdict'],
        rows: verdicts.map((v) => [v.scenario, v.load, v.measured, v.criterion, v.met ? 'MET' : 'NOT MET']),
      },
    ],
    notes: [
      'Each scenario starts after a warm-up (10 users registered and paired, 5 taps) that is not measured: a fresh process compiles its code on the first requests.',
      'Latency of a tap is measured in one process (sender and recipient are both in the harness), so no clock offset enters it.',
      '`node bench/run.ts scenarios --duration=10 --hold=3` checks the scenarios quickly; the figures above are for the flags shown in the command line.',
    ],
    failures,
    data: { options: o, ...data },
  };
}
