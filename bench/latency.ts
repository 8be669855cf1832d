import type { ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { Agent, request } from 'node:http';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { createPairs, metricsText, type Pair } from './lib/api.ts';
import { makeTempDir, removeTempDir } from './lib/cleanup.ts';
import { databaseConditions, machineBusyPercent, machineCpu } from './lib/conditions.ts';
import { profileNote, profileTables, saveProfile, type SavedProfile } from './lib/cpu-profile.ts';
import { wallClockMs, type FromReceivers, type ToReceivers } from './lib/latency-ipc.ts';
import { readOptions, type Flags } from './lib/options.ts';
import { forkHelper, ServerProcess } from './lib/processes.ts';
import { readHistogram } from './lib/prometheus.ts';
import type { BenchResult } from './lib/report.ts';
import { count, fixed, summarize, type Summary } from './lib/stats.ts';

export const latencyDefaults = {
  /** Offered taps per second, all senders together, open loop. */
  rate: 2000,
  pairs: 200,
  /** Seconds measured, after a warm-up at the same rate whose taps are not counted. */
  duration: 15,
  warmup: 3,
  /** The send timer: every tick sends the taps that fell due since the last one. */
  tickMs: 5,
  /** Keep-alive HTTP connections the senders share. */
  connections: 64,
  /** CPU-profile the service during the measured run. */
  profile: false,
};
export type LatencyOptions = typeof latencyDefaults;

const TARGET_P99_MS = 25;

/** One POST, from just before it was issued (t0) to its answer. */
interface SentTap {
  id: string;
  /** When the schedule wanted it sent; t0 - intended is the sender's own lag. */
  intended: number;
  t0: number;
  answeredAt: number;
  status: number;
}

/**
 * Benchmark 2: end-to-end tap latency, sender's POST /v1/taps to the `tap`
 * frame at the recipient's socket, at a steady open-loop rate: taps are
 * sent on schedule whether or not earlier ones were answered, as real users
 * would, so a slow server shows up as latency rather than as a lower rate.
 */
export async function runLatencyBenchmark(flags: Flags): Promise<BenchResult> {
  const options = readOptions(latencyDefaults, flags);
  const dir = makeTempDir('latency');
  const wsLimits = socketMessageLimits(options);
  const server = await ServerProcess.startNavi(join(dir, 'navi.db'), { env: wsLimits, probe: true });
  let receivers: ChildProcess | undefined;
  try {
    const pairs = await createPairs(server.url, options.pairs);
    receivers = forkHelper('latency-receivers.ts');
    const ready = await ask(receivers, {
      type: 'connect',
      wsUrl: `ws://127.0.0.1:${server.port}/v1/ws`,
      recipients: pairs.map((p) => ({ userId: p.recipient.userId, accessToken: p.recipient.accessToken })),
    });
    if (ready.type !== 'ready') throw new Error(`receivers did not connect: ${JSON.stringify(ready)}`);
    const clock = await estimateClockOffset(receivers);
    const batchesBefore = readHistogram(await metricsText(server.url), 'navi_tap_commit_batch_size');

    // From the start of the warm-up: starting the profiler stalls the service for ~100 ms.
    if (options.profile) await server.startProfile();
    const run = await sendOpenLoop(server, pairs, options);
    const profile = options.profile ? await saveProfile(server, 'latency') : undefined;
    const arrivals = await ask(receivers, { type: 'finish', graceMs: 3000 });
    if (arrivals.type !== 'arrivals') throw new Error(`receivers failed: ${JSON.stringify(arrivals)}`);
    const batchesAfter = readHistogram(await metricsText(server.url), 'navi_tap_commit_batch_size');

    const batches = {
      count: batchesAfter.count - batchesBefore.count,
      mean: (batchesAfter.sum - batchesBefore.sum) / Math.max(1, batchesAfter.count - batchesBefore.count),
    };
    const result = report(options, dir, wsLimits, clock, run, arrivals, batches, profile);
    const errors = server.errorLines();
    if (errors.length > 0) result.failures.push(`the service logged errors, the first: ${errors.join('\n')}`);
    return result;
  } finally {
    receivers?.kill();
    await server.stop();
    removeTempDir(dir);
  }
}

/**
 * The service limits each socket to 20 messages/s by default; every tap costs
 * the recipient one ack. Raised only if this run's per-recipient rate needs it.
 */
function socketMessageLimits(options: LatencyOptions): Record<string, string> {
  const perRecipient = options.rate / options.pairs;
  if (perRecipient * 2 <= 20) return {};
  const perSecond = Math.ceil(perRecipient * 2);
  return { WS_MESSAGES_PER_SECOND: String(perSecond), WS_MESSAGE_BURST: String(Math.max(60, perSecond * 3)) };
}

interface Run {
  sent: SentTap[];
  warmupCount: number;
  errors: string[];
  serverCpuPercent: number;
  senderCpuPercent: number;
  machineCpuPercent: number;
  loopDelayMs: { p50: number; p99: number; max: number };
}

async function sendOpenLoop(server: ServerProcess, pairs: Pair[], options: LatencyOptions): Promise<Run> {
  const agent = new Agent({ keepAlive: true, maxSockets: options.connections });
  const senders = pairs.map((p) => ({ token: p.sender.accessToken, to: p.recipient.userId }));
  const warmupCount = Math.round(options.rate * options.warmup);
  const total = warmupCount + Math.round(options.rate * options.duration);
  const sent: SentTap[] = [];
  const errors: string[] = [];
  const inFlight = new Set<Promise<void>>();
  const intervalMs = 1000 / options.rate;
  let cpuAtMeasureStart = { server: 0, sender: process.cpuUsage(), machine: machineCpu() };
  let serverCpuPercent = 0;
  let senderCpuPercent = 0;
  let machineCpuPercent = 0;
  let loopDelayStarted: Promise<void> = Promise.resolve();

  const sendOne = (index: number, intended: number) => {
    if (index === warmupCount) {
      cpuAtMeasureStart = { server: server.cpuSeconds(), sender: process.cpuUsage(), machine: machineCpu() };
      // Not awaited here: the schedule must not wait; the probe answers within a millisecond or two.
      loopDelayStarted = server.startLoopDelay();
    }
    // Round robin: each couple gets an evenly spaced share of the rate.
    const sender = senders[index % senders.length]!;
    const tap: SentTap = { id: randomUUID(), intended, t0: 0, answeredAt: 0, status: 0 };
    const body = JSON.stringify({ id: tap.id, to: sender.to, intensity: 'medium', pattern: 'double' });
    tap.t0 = wallClockMs();
    const done = post(agent, server.port, sender.token, body).then(
      (status) => {
        tap.answeredAt = wallClockMs();
        tap.status = status;
      },
      (error: unknown) => {
        tap.answeredAt = wallClockMs();
        if (errors.length < 20) errors.push(String(error));
      },
    );
    if (index >= warmupCount) sent.push(tap);
    inFlight.add(done);
    void done.finally(() => inFlight.delete(done));
  };

  const start = wallClockMs() + 20;
  await new Promise<void>((resolve) => {
    let next = 0;
    const timer = setInterval(() => {
      const due = Math.min(total, Math.floor((wallClockMs() - start) / intervalMs) + 1);
      for (; next < due; next++) sendOne(next, start + next * intervalMs);
      if (next >= total) {
        clearInterval(timer);
        const cpu = process.cpuUsage(cpuAtMeasureStart.sender);
        const seconds = (wallClockMs() - sent[0]!.t0) / 1000;
        serverCpuPercent = ((server.cpuSeconds() - cpuAtMeasureStart.server) / seconds) * 100;
        senderCpuPercent = ((cpu.user + cpu.system) / 1e6 / seconds) * 100;
        machineCpuPercent = machineBusyPercent(cpuAtMeasureStart.machine, machineCpu());
        resolve();
      }
    }, options.tickMs);
  });
  await loopDelayStarted;
  const loopDelayMs = await server.stopLoopDelay();
  while (inFlight.size > 0) await Promise.all(inFlight);
  agent.destroy();
  return { sent, warmupCount, errors, serverCpuPercent, senderCpuPercent, machineCpuPercent, loopDelayMs };
}

function post(agent: Agent, port: number, token: string, body: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        agent,
        host: '127.0.0.1',
        port,
        method: 'POST',
        path: '/v1/taps',
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), authorization: `Bearer ${token}` },
      },
      (response) => {
        response.resume();
        response.once('end', () => resolve(response.statusCode ?? 0));
        response.once('error', reject);
      },
    );
    req.once('error', reject);
    req.end(body);
  });
}

/**
 * NTP-style: the receivers' clock minus ours, from the round trip with the
 * smallest delay (its error is at most half that round trip).
 */
async function estimateClockOffset(receivers: ChildProcess): Promise<{ offsetMs: number; errorBoundMs: number }> {
  let best = { offsetMs: 0, errorBoundMs: Number.POSITIVE_INFINITY };
  for (let i = 0; i < 30; i++) {
    const sentAt = wallClockMs();
    const answer = await ask(receivers, { type: 'clock', sentAt });
    const back = wallClockMs();
    if (answer.type !== 'clock') continue;
    const roundTrip = back - sentAt;
    if (roundTrip / 2 < best.errorBoundMs) best = { offsetMs: answer.remoteNow - (sentAt + back) / 2, errorBoundMs: roundTrip / 2 };
  }
  return best;
}

function ask(child: ChildProcess, message: ToReceivers, timeoutMs = 120_000): Promise<FromReceivers> {
  return new Promise((resolve, reject) => {
    const cleanUp = () => {
      clearTimeout(timer);
      child.off('message', onMessage);
      child.off('exit', onExit);
    };
    const onMessage = (answer: FromReceivers) => {
      cleanUp();
      resolve(answer);
    };
    const onExit = (code: number | null) => {
      cleanUp();
      reject(new Error(`the receivers process exited (${code}) while answering ${message.type}`));
    };
    const timer = setTimeout(() => {
      cleanUp();
      reject(new Error(`the receivers process did not answer ${message.type}`));
    }, timeoutMs);
    child.once('message', onMessage);
    child.once('exit', onExit);
    child.send(message);
  });
}

function report(
  options: LatencyOptions,
  dir: string,
  wsLimits: Record<string, string>,
  clock: { offsetMs: number; errorBoundMs: number },
  run: Run,
  arrivals: Extract<FromReceivers, { type: 'arrivals' }>,
  batches: { count: number; mean: number },
  profile: SavedProfile | undefined,
): BenchResult {
  const arrivedAt = new Map<string, number>();
  arrivals.ids.forEach((id, i) => arrivedAt.set(id, arrivals.times[i]!));
  const answered = run.sent.filter((tap) => tap.status >= 200 && tap.status < 300);
  const refused = run.sent.filter((tap) => tap.status !== 0 && (tap.status < 200 || tap.status >= 300));
  const first = run.sent[0]!;
  const endToEnd: number[] = [];
  // By the second of the run the tap was sent in: shows whether the tail is spread out or comes in stalls.
  const bySecond: number[][] = [];
  let missing = 0;
  for (const tap of answered) {
    const t1 = arrivedAt.get(tap.id);
    if (t1 === undefined) {
      missing++;
      continue;
    }
    endToEnd.push(t1 - tap.t0);
    (bySecond[Math.floor((tap.t0 - first.t0) / 1000)] ??= []).push(t1 - tap.t0);
  }
  const perSecond = bySecond.map((values) => summarize(values));
  const secondsOverTarget = perSecond.filter((s) => s.p99 >= TARGET_P99_MS).length;
  const last = run.sent.at(-1)!;
  const seconds = (last.t0 - first.t0) / 1000;
  const achievedRate = (run.sent.length - 1) / seconds;
  const latency = summarize(endToEnd);
  const http = summarize(answered.map((tap) => tap.answeredAt - tap.t0));
  const lag = summarize(run.sent.map((tap) => tap.t0 - tap.intended));
  const db = databaseConditions(dir);

  const failures: string[] = [];
  if (refused.length > 0) {
    const codes: Record<number, number> = {};
    for (const tap of refused) codes[tap.status] = (codes[tap.status] ?? 0) + 1;
    failures.push(`${refused.length} taps answered non-2xx: ${JSON.stringify(codes)}`);
  }
  if (run.errors.length > 0) failures.push(`HTTP errors, e.g. ${run.errors.slice(0, 3).join('; ')}`);
  if (missing > 0) failures.push(`${missing} taps answered 2xx but no tap frame reached the recipient`);
  if (arrivals.closed > 0) failures.push(`${arrivals.closed} recipient sockets closed during the run`);
  if (arrivals.errorFrames.length > 0) failures.push(`error frames to recipients, e.g. ${arrivals.errorFrames.slice(0, 3).join(' ')}`);

  const row = (name: string, s: Summary) => [name, count(s.count), fixed(s.p50), fixed(s.p90), fixed(s.p99), fixed(s.max)];
  const met = latency.p99 < TARGET_P99_MS && achievedRate >= options.rate * 0.98 && failures.length === 0;
  return {
    name: 'latency',
    title: 'End-to-end tap latency: POST /v1/taps by the sender to the tap frame at the recipient',
    conditions: {
      load: `open loop, ${count(options.rate)} taps/s offered over ${options.pairs} couples (${fixed(options.rate / options.pairs, 1)} per couple per second), a send timer every ${options.tickMs} ms`,
      duration: `${options.duration} s measured after a ${options.warmup} s warm-up at the same rate`,
      senders: `node:http, ${options.connections} keep-alive connections, in the harness process`,
      recipients: `${options.pairs} WebSockets (Authorization header at the upgrade) in a separate process; each acks every tap ("delivered") like the app`,
      payload: 'JSON {id (client-chosen uuid, used to match the frame), to, intensity, pattern}',
      clocks: `t0 in the senders' process, t1 in the recipients' process, both performance.timeOrigin + performance.now(); measured offset ${fixed(clock.offsetMs, 3)} ms (±${fixed(clock.errorBoundMs, 3)})`,
      database: `${db.kind}, journal ${db.journalMode}, synchronous=${db.synchronous}, on ${db.fileSystem}`,
      service: `the service (bench/lib/probe.ts preloaded: IPC channel, idle but for the event-loop monitor${options.profile ? ' and the profiler' : ''}), NODE_ENV=production, LOG_LEVEL=warn, tap rate limit raised, ${Object.keys(wsLimits).length > 0 ? `socket message limit raised to ${wsLimits.WS_MESSAGES_PER_SECOND}/s` : 'socket message limits at their defaults'}, no APNs`,
    },
    tables: [
      {
        title: `Achieved ${fixed(achievedRate, 0)} taps/s (offered ${count(options.rate)}); target p99 < ${TARGET_P99_MS} ms: ${met ? 'MET' : 'NOT MET'}`,
        columns: ['ms', 'samples', 'p50', 'p90', 'p99', 'max'],
        rows: [
          row('POST sent -> tap frame at recipient', latency),
          row('POST sent -> HTTP response', http),
          row("sender's own lag behind schedule", lag),
        ],
      },
      {
        columns: [
          'HTTP non-2xx',
          'HTTP errors',
          'missing frames',
          'acks sent',
          'recipient sockets closed',
          'server CPU',
          'sender CPU',
          'machine CPU',
          'server loop delay p50/p99/max ms',
          'taps per commit',
        ],
        rows: [
          [
            refused.length,
            run.errors.length,
            missing,
            count(arrivals.acksSent),
            arrivals.closed,
            `${Math.round(run.serverCpuPercent)}%`,
            `${Math.round(run.senderCpuPercent)}%`,
            `${Math.round(run.machineCpuPercent)}% of ${availableParallelism() * 100}%`,
            `${fixed(run.loopDelayMs.p50, 1)} / ${fixed(run.loopDelayMs.p99, 1)} / ${fixed(run.loopDelayMs.max, 1)}`,
            fixed(batches.mean, 1),
          ],
        ],
      },
      ...(profile ? profileTables(profile) : []),
    ],
    notes: [
      `p99 of each second of the measured run, in ms: ${perSecond.map((s) => fixed(s.p99, 0)).join(' ')} (${secondsOverTarget} of ${perSecond.length} seconds at or over ${TARGET_P99_MS} ms).`,
      ...(profile ? [profileNote(profile), 'The profile covers warm-up and measured run.'] : []),
      'Latency is measured from t0, taken just before each POST is issued (so a sender lagging behind its schedule is not counted as service latency; that lag is shown separately).',
      `Taps per commit: ${count(batches.count)} commits carrying taps over warm-up and measured run (acks share these commits).`,
      "Server CPU: user+system time of the service process (100% = one core). Machine CPU: all processes on all cores, the recipients' process and anything else running included. Loop delay: how much later than due a 10 ms timer fired in the service (perf_hooks.monitorEventLoopDelay), i.e. how long the event loop was blocked at a stretch.",
    ],
    failures,
    data: {
      options,
      achievedRate,
      endToEndMs: latency,
      httpMs: http,
      senderLagMs: lag,
      perSecond,
      profile,
      missing,
      refused: refused.length,
      httpErrors: run.errors,
      clock,
      serverCpuPercent: run.serverCpuPercent,
      machineCpuPercent: run.machineCpuPercent,
      loopDelayMs: run.loopDelayMs,
      senderCpuPercent: run.senderCpuPercent,
      batches,
      acksSent: arrivals.acksSent,
      recipientSocketsClosed: arrivals.closed,
    },
  };
}
