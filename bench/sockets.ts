import type { ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { call } from './lib/api.ts';
import { makeTempDir, removeTempDir } from './lib/cleanup.ts';
import { listenDrops } from './lib/conditions.ts';
import { perSocketGrowth, tallyHeap } from './lib/heap-snapshot.ts';
import { readOptions, type Flags } from './lib/options.ts';
import { forkHelper, ROOT, ServerProcess, type MemorySample } from './lib/processes.ts';
import type { BenchResult, Table } from './lib/report.ts';
import type { ClientStatus, FromClients, ToClients } from './lib/sockets-ipc.ts';
import { count, fixed, sleep } from './lib/stats.ts';

export const socketDefaults = {
  /**
   * Sockets to hold: the service process may open 20,000 files, and needs a
   * few dozen for itself (database, WAL, listening socket, event loop).
   */
  sockets: 19_900,
  /** Client processes: each has the same 20,000-file limit. */
  clients: 5,
  /** Sockets each client opens at a time; 5 x 100 in flight stays under the listen backlog (511). */
  batch: 100,
  /** Server heartbeat, seconds (the service's default). */
  heartbeat: 25,
  /** Seconds to stay connected after the last socket opened; 0 = two heartbeats and 5 s, so every socket has answered a ping. */
  hold: 0,
  /** Seconds left for memory to settle before each sample (after a forced GC in the server). */
  settle: 5,
  /**
   * Also break the service's per-socket heap down by object kind, from heap
   * snapshots with and without the sockets (after all other measurements;
   * snapshots are large, so at most 5,000 sockets).
   */
  heap: false,
};
export type SocketOptions = typeof socketDefaults;

interface Measurement {
  target: number;
  baseline: MemorySample;
  connected: MemorySample;
  /** After the hold, for the service (its heartbeat ran meanwhile). */
  held?: MemorySample;
  /** After every socket was closed again: what the service did not give back. */
  closed?: MemorySample;
  serverConnectionsAfterClose?: number;
  heapGrowth?: ReturnType<typeof perSocketGrowth>;
  status: ClientStatus;
  /** What the server itself counts (the service's /health), if it can say. */
  serverConnections?: number;
  connectSeconds: number;
  /** SYNs the kernel dropped (full listen backlog) while connecting. */
  listenDrops: number;
  registerSeconds?: number;
}

/**
 * Benchmark 3: how many idle authenticated sockets one instance holds, and
 * what each costs in server memory, next to a bare `ws` server. One socket
 * per user (each user registered over HTTP with one device): the shape of
 * the real fleet, and no per-user cap is raised.
 */
export async function runSocketBenchmark(flags: Flags): Promise<BenchResult> {
  const options = readOptions(socketDefaults, flags);
  if (options.heap && options.sockets > 5000)
    throw new Error('--heap needs --sockets=5000 or fewer (a snapshot of 20,000 sockets is too large to read back)');
  const hold = options.hold > 0 ? options.hold : options.heartbeat * 2 + 5;
  const navi = await measureNavi(options, hold);
  const bare = await measureBare(options);
  return report(options, hold, navi, bare);
}

async function measureNavi(options: SocketOptions, hold: number): Promise<Measurement> {
  const dir = makeTempDir('sockets');
  const server = await ServerProcess.startNavi(join(dir, 'navi.db'), {
    probe: true,
    env: { WS_HEARTBEAT_SECONDS: String(options.heartbeat) },
  });
  const clients = startClients(options.clients);
  try {
    const shares = split(options.sockets, options.clients);
    const registerStarted = performance.now();
    await Promise.all(
      clients.map((client, i) => ask(client, { type: 'register', baseUrl: server.url, count: shares[i]!, concurrency: 8 })),
    );
    const registerSeconds = (performance.now() - registerStarted) / 1000;

    const baseline = await sample(server, options);
    const { connectSeconds, listenDrops } = await connect(clients, shares, `ws://127.0.0.1:${server.port}/v1/ws`, options, true);
    const connected = await sample(server, options);
    await sleep(Math.max(0, hold - options.settle) * 1000);
    const held = await sample(server, options);
    const status = mergeStatus(await Promise.all(clients.map((client) => ask(client, { type: 'status' }))));
    const health = await websocketConnections(server.url);

    // After all measurements: the sockets' memory must come back once they close.
    const withSockets = options.heap ? await server.heapSnapshot(join(dir, 'with-sockets.heapsnapshot')) : undefined;
    await Promise.all(clients.map((client) => ask(client, { type: 'close' })));
    const closed = await sample(server, options);
    const afterClose = await websocketConnections(server.url);
    const without = withSockets ? await server.heapSnapshot(join(dir, 'without-sockets.heapsnapshot')) : undefined;
    const heapGrowth = withSockets && without ? perSocketGrowth(tallyHeap(withSockets), tallyHeap(without), status.open) : undefined;
    return {
      target: options.sockets,
      baseline,
      connected,
      held,
      // The first heap snapshot inflated RSS: only the heap figure of this sample still means something.
      closed: withSockets ? { ...closed, rssKiB: Number.NaN } : closed,
      status,
      serverConnections: health.connections,
      serverConnectionsAfterClose: afterClose.connections,
      heapGrowth,
      connectSeconds,
      listenDrops,
      registerSeconds,
    };
  } finally {
    await stopClients(clients);
    await server.stop();
    removeTempDir(dir);
  }
}

/** The live sockets the service counts, from /health's websocket check. */
async function websocketConnections(url: string): Promise<{ connections: number }> {
  const health = await call<{ checks: { websocket: { connections: number } } }>(url, 'GET', '/health');
  return { connections: health.checks.websocket.connections };
}

async function measureBare(options: SocketOptions): Promise<Measurement> {
  const server = await ServerProcess.start('bare-ws', join(ROOT, 'bench/bare-ws-server.ts'), { env: {}, probe: true });
  const clients = startClients(options.clients);
  try {
    const shares = split(options.sockets, options.clients);
    const baseline = await sample(server, options);
    const { connectSeconds, listenDrops } = await connect(clients, shares, `ws://127.0.0.1:${server.port}/`, options, false);
    const connected = await sample(server, options);
    const status = mergeStatus(await Promise.all(clients.map((client) => ask(client, { type: 'status' }))));
    return { target: options.sockets, baseline, connected, status, connectSeconds, listenDrops };
  } finally {
    await stopClients(clients);
    await server.stop();
  }
}

/** Memory after the process has been idle for `settle` seconds; the probe forces a full GC first. */
async function sample(server: ServerProcess, options: SocketOptions): Promise<MemorySample> {
  await sleep(options.settle * 1000);
  return server.memory();
}

async function connect(clients: ChildProcess[], shares: number[], wsUrl: string, options: SocketOptions, authenticated: boolean) {
  const dropsBefore = listenDrops();
  const started = performance.now();
  const answers = await Promise.all(
    clients.map((client, i) => ask(client, { type: 'connect', wsUrl, count: shares[i]!, batch: options.batch, authenticated })),
  );
  mergeStatus(answers); // throws if a client process failed
  return { connectSeconds: (performance.now() - started) / 1000, listenDrops: listenDrops() - dropsBefore };
}

function startClients(n: number): ChildProcess[] {
  return Array.from({ length: n }, () => forkHelper('ws-clients.ts'));
}

async function stopClients(clients: ChildProcess[]): Promise<void> {
  await Promise.allSettled(clients.map((client) => ask(client, { type: 'close' }, 10_000)));
  for (const client of clients) client.kill();
}

/** `total` spread as evenly as possible over `n` processes. */
function split(total: number, n: number): number[] {
  return Array.from({ length: n }, (_, i) => Math.floor(total / n) + (i < total % n ? 1 : 0));
}

function mergeStatus(answers: FromClients[]): ClientStatus {
  const merged: ClientStatus = {
    type: 'status',
    open: 0,
    closedByCode: {},
    failedToOpen: 0,
    errors: [],
    minPings: Number.POSITIVE_INFINITY,
    maxPings: 0,
    slowestConnectMs: 0,
  };
  for (const answer of answers) {
    if (answer.type !== 'status') throw new Error(`a client process failed: ${JSON.stringify(answer)}`);
    merged.open += answer.open;
    for (const [code, n] of Object.entries(answer.closedByCode)) merged.closedByCode[code] = (merged.closedByCode[code] ?? 0) + n;
    merged.failedToOpen += answer.failedToOpen;
    merged.errors.push(...answer.errors.slice(0, 5 - merged.errors.length));
    merged.minPings = Math.min(merged.minPings, answer.minPings);
    merged.maxPings = Math.max(merged.maxPings, answer.maxPings);
    merged.slowestConnectMs = Math.max(merged.slowestConnectMs, answer.slowestConnectMs);
  }
  return merged;
}

function ask(child: ChildProcess, message: ToClients, timeoutMs = 600_000): Promise<FromClients> {
  return new Promise((resolve, reject) => {
    const cleanUp = () => {
      clearTimeout(timer);
      child.off('message', onMessage);
      child.off('exit', onExit);
    };
    const onMessage = (answer: FromClients) => {
      cleanUp();
      if (answer.type === 'failed') reject(new Error(`client process: ${answer.message}`));
      else resolve(answer);
    };
    const onExit = (code: number | null) => {
      cleanUp();
      reject(new Error(`a client process exited (${code}) while answering ${message.type}`));
    };
    const timer = setTimeout(() => {
      cleanUp();
      reject(new Error(`a client process did not answer ${message.type}`));
    }, timeoutMs);
    child.once('message', onMessage);
    child.once('exit', onExit);
    child.send(message);
  });
}

const KiB = 1024;

/** Growth per socket from the baseline, in KiB: RSS, and the JavaScript heap plus external (Buffers) after a GC. */
function perSocket(m: Measurement, at: MemorySample) {
  const n = Math.max(1, m.status.open);
  const heap = (s: MemorySample) => (s.heapUsed ?? 0) + (s.external ?? 0);
  return { rssKiB: (at.rssKiB - m.baseline.rssKiB) / n, heapPlusExternalKiB: (heap(at) - heap(m.baseline)) / KiB / n };
}

function heapTable(growth: NonNullable<Measurement['heapGrowth']>): Table {
  const total = growth.reduce((sum, g) => sum + Math.max(0, g.bytesPerSocket), 0);
  return {
    title: `What one socket adds to the service's heap, by kind (heap snapshots with and without the sockets; the top ${growth.length} make ${fixed(total / KiB, 2)} KiB)`,
    columns: ['kind', 'objects per socket', 'bytes per socket'],
    rows: growth.map((g) => [g.kind, fixed(g.objectsPerSocket, 2), fixed(g.bytesPerSocket, 0)]),
  };
}

function report(options: SocketOptions, hold: number, navi: Measurement, bare: Measurement): BenchResult {
  const failures: string[] = [];
  for (const [name, m] of [
    ['service', navi],
    ['bare ws', bare],
  ] as const) {
    const closed = Object.values(m.status.closedByCode).reduce((a, b) => a + b, 0);
    if (m.status.open < m.target)
      failures.push(
        `${name}: ${m.status.open} of ${m.target} sockets open at the end (${m.status.failedToOpen} never opened, closed after opening by code: ${JSON.stringify(m.status.closedByCode)}; errors: ${m.status.errors.join('; ')})`,
      );
    else if (closed > 0) failures.push(`${name}: ${closed} sockets closed: ${JSON.stringify(m.status.closedByCode)}`);
  }
  if (navi.serverConnections !== undefined && navi.serverConnections !== navi.status.open)
    failures.push(`service counts ${navi.serverConnections} connections, the clients ${navi.status.open}`);
  if (navi.serverConnectionsAfterClose !== 0)
    failures.push(`service still counts ${navi.serverConnectionsAfterClose} connections after every client closed`);
  if (navi.status.minPings < 2) failures.push(`some service sockets saw only ${navi.status.minPings} heartbeat pings during the hold`);

  const naviConnected = perSocket(navi, navi.connected);
  const naviHeld = perSocket(navi, navi.held!);
  const bareConnected = perSocket(bare, bare.connected);
  const mib = (kib: number) => fixed(kib / 1024, 1);
  const heapMiB = (s: MemorySample) => fixed(((s.heapUsed ?? 0) + (s.external ?? 0)) / KiB / KiB, 1);
  const row = (name: string, m: Measurement, at: MemorySample, per: { rssKiB: number; heapPlusExternalKiB: number }) => [
    name,
    count(m.status.open),
    `${mib(m.baseline.rssKiB)} -> ${mib(at.rssKiB)}`,
    fixed(per.rssKiB, 2),
    `${heapMiB(m.baseline)} -> ${heapMiB(at)}`,
    fixed(per.heapPlusExternalKiB, 2),
  ];
  const ceiling = 12;
  return {
    name: 'sockets',
    title: 'Idle authenticated sockets: how many, and server memory per socket',
    conditions: {
      sockets: `${count(options.sockets)} asked for, one per user (registered over HTTP, one device each, unpaired), Authorization header at the upgrade`,
      clients: `${options.clients} client processes (ws), ${options.batch} sockets at a time each, next batch once the last said hello`,
      heartbeat: `server pings every ${options.heartbeat} s; held ${hold} s after the last socket opened (fewest pings seen by a socket: ${navi.status.minPings})`,
      memory: `VmRSS from /proc/<pid>/status, and heapUsed + external from process.memoryUsage() after a forced full GC (bench/lib/probe.ts preloaded with --expose-gc); ${options.settle} s settle before each sample; kernel socket buffers are not in RSS`,
      service: 'the service, NODE_ENV=production, LOG_LEVEL=warn, default per-user/per-device connection caps (1 socket per user here)',
      'open-file limit': 'the server and each client process: 20,000',
    },
    tables: [
      {
        title: `Memory per socket (target: <= ${ceiling} KiB per socket)`,
        columns: ['server', 'sockets open', 'RSS MiB (0 -> N)', 'RSS KiB/socket', 'heap+external MiB (0 -> N)', 'heap+external KiB/socket'],
        rows: [
          row('navi, just connected', navi, navi.connected, naviConnected),
          row(`navi, after ${hold} s of heartbeats`, navi, navi.held!, naviHeld),
          row('bare ws, just connected', bare, bare.connected, bareConnected),
          row('navi, all closed again (left behind)', navi, navi.closed!, perSocket(navi, navi.closed!)),
        ],
      },
      {
        columns: ['server', 'register s', 'connect s', 'slowest connect ms', 'SYNs dropped', 'server-side count', 'closed', 'never opened'],
        rows: [
          [
            'navi',
            fixed(navi.registerSeconds ?? Number.NaN, 1),
            fixed(navi.connectSeconds, 1),
            fixed(navi.status.slowestConnectMs, 0),
            navi.listenDrops,
            count(navi.serverConnections ?? Number.NaN),
            JSON.stringify(navi.status.closedByCode),
            navi.status.failedToOpen,
          ],
          [
            'bare ws',
            '',
            fixed(bare.connectSeconds, 1),
            fixed(bare.status.slowestConnectMs, 0),
            bare.listenDrops,
            '',
            JSON.stringify(bare.status.closedByCode),
            bare.status.failedToOpen,
          ],
        ],
      },
      ...(navi.heapGrowth ? [heapTable(navi.heapGrowth)] : []),
    ],
    notes: [
      `Per socket = (sample at N - sample at 0) / N; the 0-socket sample is taken after registration, so it already holds what the users' sign-ups left in memory. Target ${naviHeld.rssKiB <= ceiling ? 'MET' : 'NOT MET'} on RSS after the hold.`,
      'The last row divides what stayed after every socket closed by the sockets there were: about 0 heap+external means nothing leaked (RSS need not shrink: freed pages are kept for reuse).',
      "SYNs dropped: TcpExt ListenDrops of the whole machine during the connect phase; a dropped SYN is retried after 1 s and explains a slowest connect near 1,000 ms. Otherwise a slow connect is the server being busy (the service reads the user's cursor and partners before hello).",
    ],
    failures,
    data: {
      options,
      hold,
      navi: { ...navi, perSocket: { connected: naviConnected, held: naviHeld } },
      bare: { ...bare, perSocket: bareConnected },
    },
  };
}
