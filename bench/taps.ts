import { randomUUID } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import type { Options, Request } from 'autocannon';
import { createPairs, metricsText, type Pair } from './lib/api.ts';
import { makeTempDir, removeTempDir } from './lib/cleanup.ts';
import { databaseConditions, machineBusyPercent, machineCpu } from './lib/conditions.ts';
import { profileNote, profileTables, saveProfile, type SavedProfile } from './lib/cpu-profile.ts';
import { runLoad, type LoadRun } from './lib/load.ts';
import { readOptions, type Flags } from './lib/options.ts';
import { ROOT, ServerProcess } from './lib/processes.ts';
import { bucketRanges, histogramDelta, readHistogram, type Histogram } from './lib/prometheus.ts';
import type { BenchResult, Table } from './lib/report.ts';
import { fixed, count, summarize, type Summary } from './lib/stats.ts';

export const tapDefaults = {
  /** Partner couples; taps go both ways, so twice as many senders. */
  pairs: 100,
  connections: 50,
  /** Seconds measured, after a warm-up run that is thrown away (JIT, caches, WAL growth). */
  duration: 12,
  warmup: 3,
  /** Write a CPU profile of the service and summarise it. */
  profile: false,
};
export type TapOptions = typeof tapDefaults;

interface Measured {
  requestsPerSecond: number;
  requests: number;
  latencyMs: Summary;
  non2xx: number;
  errors: number;
  timeouts: number;
  statusCodes: Record<string, number>;
  serverCpuPercent: number;
  generatorCpuPercent: number;
  machineCpuPercent: number;
  loopDelayMs: { p50: number; p99: number; max: number };
}

/**
 * Benchmark 1: sustained POST /v1/taps (authenticated, paired, committed
 * with synchronous=FULL before the response) against a bare Fastify route
 * validating the same body, under the same closed-loop autocannon load.
 */
export async function runTapBenchmark(flags: Flags): Promise<BenchResult> {
  const options = readOptions(tapDefaults, flags);
  const failures: string[] = [];
  const dir = makeTempDir('taps');
  try {
    const bare = await measureBare(options);
    const navi = await measureNavi(options, dir);
    for (const [name, m] of [
      ['bare route', bare],
      ['POST /v1/taps', navi.measured],
    ] as const) {
      if (m.non2xx > 0 || m.errors > 0 || m.timeouts > 0)
        failures.push(
          `${name}: ${m.non2xx} non-2xx, ${m.errors} errors, ${m.timeouts} timeouts (status codes ${JSON.stringify(m.statusCodes)})`,
        );
    }
    if (navi.errorLines.length > 0) failures.push(`the service logged errors, the first: ${navi.errorLines.join('\n')}`);
    return report(options, dir, bare, navi, failures);
  } finally {
    removeTempDir(dir);
  }
}

async function measureBare(options: TapOptions): Promise<Measured> {
  const server = await ServerProcess.start('bare', join(ROOT, 'bench/bare-server.ts'), { env: {}, probe: true });
  try {
    // The bare route ignores the token, but gets requests of the very same shape.
    const load = loadSettings(server, fakePairs(options.pairs), options);
    await warmUp(load, options);
    return await measure(server, load, options);
  } finally {
    await server.stop();
  }
}

async function measureNavi(options: TapOptions, dir: string) {
  const server = await ServerProcess.startNavi(join(dir, 'navi.db'), { probe: true });
  try {
    const load = loadSettings(server, await createPairs(server.url, options.pairs), options);
    // Starting the profiler stalls the service for ~100 ms: let the warm-up absorb it.
    if (options.profile) await server.startProfile();
    await warmUp(load, options);
    // Only the measured run counts: the warm-up's batches are left out.
    const before = readHistogram(await metricsText(server.url), 'navi_tap_commit_batch_size');
    const measured = await measure(server, load, options);
    const profile = options.profile ? await saveProfile(server, 'taps') : undefined;
    const after = readHistogram(await metricsText(server.url), 'navi_tap_commit_batch_size');
    return {
      measured,
      batches: histogramDelta(before, after),
      profile,
      warnings: countWarnings(server.output),
      errorLines: server.errorLines(),
    };
  } finally {
    await server.stop();
  }
}

function loadSettings(server: ServerProcess, pairs: Pair[], options: TapOptions): Options {
  return { url: server.url, connections: options.connections, timeout: 10, requests: [tapRequest(pairs)] };
}

/** JIT, caches and the WAL file warm up in a run whose numbers are thrown away. */
async function warmUp(load: Options, options: TapOptions): Promise<void> {
  if (options.warmup > 0) await runLoad({ ...load, duration: options.warmup });
}

async function measure(server: ServerProcess, load: Options, options: TapOptions): Promise<Measured> {
  await server.startLoopDelay();
  const machineBefore = machineCpu();
  const cpuBefore = server.cpuSeconds();
  const run: LoadRun = await runLoad({ ...load, duration: options.duration });
  const serverCpu = server.cpuSeconds() - cpuBefore;
  const machineCpuPercent = machineBusyPercent(machineBefore, machineCpu());
  const loopDelayMs = await server.stopLoopDelay();
  const { result } = run;
  return {
    requestsPerSecond: result.requests.average,
    requests: result.requests.total,
    latencyMs: summarize(run.latenciesMs),
    non2xx: result.non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
    statusCodes: Object.fromEntries(Object.entries(result.statusCodeStats).map(([code, { count }]) => [code, count])),
    serverCpuPercent: (serverCpu / result.duration) * 100,
    generatorCpuPercent: (run.generatorCpuSeconds / result.duration) * 100,
    machineCpuPercent,
    loopDelayMs,
  };
}

const INTENSITIES = ['light', 'medium', 'strong'] as const;
const PATTERNS = ['single', 'double', 'triple', 'heartbeat', 'long'] as const;

/**
 * Every request goes to the next sender in turn (both partners of every
 * couple send), with a fresh client-chosen id as the apps send for safe
 * retries, so the service also checks the id for an earlier copy.
 */
function tapRequest(pairs: Pair[]): Request {
  const senders = pairs.flatMap((p) => [
    { token: p.sender.accessToken, to: p.recipient.userId },
    { token: p.recipient.accessToken, to: p.sender.userId },
  ]);
  let next = 0;
  return {
    method: 'POST',
    path: '/v1/taps',
    setupRequest: (request) => {
      const i = next++;
      const sender = senders[i % senders.length]!;
      return {
        ...request,
        headers: { 'content-type': 'application/json', authorization: `Bearer ${sender.token}` },
        body: JSON.stringify({ id: randomUUID(), to: sender.to, intensity: INTENSITIES[i % 3], pattern: PATTERNS[i % 5] }),
      };
    },
  };
}

/** Well-formed stand-ins for the bare server, which checks the body but not who sends it. */
function fakePairs(n: number): Pair[] {
  const fake = () => ({ userId: randomUUID(), deviceId: randomUUID(), accessToken: `fake.${randomUUID()}.token` });
  return Array.from({ length: n }, () => ({ sender: fake(), recipient: fake() }));
}

function countWarnings(output: string): number {
  return output.split('\n').filter((line) => /"level":(40|50|60)/.test(line)).length;
}

function report(
  options: TapOptions,
  dir: string,
  bare: Measured,
  navi: { measured: Measured; batches: Histogram; profile?: SavedProfile; warnings: number; errorLines: string[] },
  failures: string[],
): BenchResult {
  const db = databaseConditions(dir);
  const ratio = navi.measured.requestsPerSecond / bare.requestsPerSecond;
  const meanBatch = navi.batches.count === 0 ? Number.NaN : navi.batches.sum / navi.batches.count;
  const row = (name: string, m: Measured) => [
    name,
    count(m.requestsPerSecond),
    count(m.requests),
    fixed(m.latencyMs.p50),
    fixed(m.latencyMs.p90),
    fixed(m.latencyMs.p99),
    fixed(m.latencyMs.max),
    m.non2xx + m.errors + m.timeouts,
    `${Math.round(m.serverCpuPercent)}%`,
    `${Math.round(m.generatorCpuPercent)}%`,
    `${Math.round(m.machineCpuPercent)}%`,
    `${fixed(m.loopDelayMs.p99, 1)} / ${fixed(m.loopDelayMs.max, 1)}`,
  ];
  const tables: Table[] = [
    {
      title: 'Closed-loop throughput',
      columns: [
        'target',
        'req/s',
        'requests',
        'p50 ms',
        'p90 ms',
        'p99 ms',
        'max ms',
        'non-2xx+errors',
        'server CPU',
        'autocannon CPU',
        `machine CPU (of ${availableParallelism() * 100}%)`,
        'server loop delay p99/max ms',
      ],
      rows: [row('POST /v1/taps (navi)', navi.measured), row('bare Fastify route', bare), ['ratio taps/bare', fixed(ratio, 3)]],
    },
    {
      title: `Group commit during the measured run: ${count(navi.batches.count)} batches, mean ${fixed(meanBatch, 1)} taps per commit`,
      columns: ['taps per commit', 'batches'],
      rows: bucketRanges(navi.batches)
        .filter((b) => b.count > 0)
        .map((b) => [b.range, count(b.count)]),
    },
  ];
  if (navi.profile) tables.push(...profileTables(navi.profile));
  const notes = [
    'Closed loop: each connection sends its next request when the previous answer arrives, so req/s is the capacity at this concurrency and latency includes queueing.',
    'Server CPU is user+system time of the server process over the measured run (100% = one core; a Node service runs its JavaScript on one). Machine CPU counts every process on every core: well above server + autocannon means something else was running. Loop delay: how late a 10 ms timer fired in the server (perf_hooks.monitorEventLoopDelay).',
  ];
  if (bare.generatorCpuPercent > 90)
    notes.push(
      `autocannon used ${Math.round(bare.generatorCpuPercent)}% of a core against the bare route: there the load generator is the limit, so the bare figure is a lower bound and the ratio an upper bound.`,
    );
  if (navi.profile) notes.push(profileNote(navi.profile), 'The profile covers warm-up and measured run.');
  if (navi.warnings > 0) notes.push(`The service logged ${navi.warnings} warning/error lines during the run.`);
  return {
    name: 'taps',
    title: 'Tap throughput: POST /v1/taps vs a bare Fastify route',
    conditions: {
      'load generator': `autocannon ${options.connections} connections, closed loop, no pipelining, in the harness process`,
      duration: `${options.duration} s measured after a ${options.warmup} s warm-up, each target in its own process`,
      payload: `JSON {id (uuid), to (uuid), intensity, pattern}, ${JSON.stringify({ id: randomUUID(), to: randomUUID(), intensity: 'medium', pattern: 'double' }).length} bytes, Bearer access token`,
      senders: `${options.pairs * 2} users in ${options.pairs} paired couples, one device each, rotating per request`,
      database: `${db.kind}, journal ${db.journalMode}, synchronous=${db.synchronous}, on ${db.fileSystem}`,
      service:
        'the service (bench/lib/probe.ts preloaded for the event-loop monitor and profiler, idle otherwise), NODE_ENV=production, LOG_LEVEL=warn, tap and auth rate limits raised, no APNs (push off)',
    },
    tables,
    notes,
    failures,
    data: { options, bare, navi: navi.measured, ratio, batchSize: { ...navi.batches, mean: meanBatch }, profile: navi.profile },
  };
}
