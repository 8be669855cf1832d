import { WebSocket } from 'ws';
import { closeConnections, register } from './lib/api.ts';
import type { ClientStatus, FromClients, ToClients } from './lib/sockets-ipc.ts';
import { mapLimit } from './lib/stats.ts';

/**
 * One of the socket benchmark's client processes (each process has its own
 * 20,000 open-file limit, so the 20,000 sockets are spread over several).
 * Its sockets stay idle: they answer the server's pings (ws does that
 * itself) and count them.
 */
interface Tracked {
  socket: WebSocket;
  pings: number;
}

const tokens: string[] = [];
const sockets: Tracked[] = [];
const closedByCode: Record<string, number> = {};
const errors: string[] = [];
let failedToOpen = 0;
let slowestConnectMs = 0;

const reply = (message: FromClients) => process.send!(message);

function open(wsUrl: string, token: string | undefined): Promise<void> {
  const started = performance.now();
  return new Promise((resolve) => {
    const socket = new WebSocket(wsUrl, { perMessageDeflate: false, ...(token ? { headers: { authorization: `Bearer ${token}` } } : {}) });
    const tracked: Tracked = { socket, pings: 0 };
    let opened = false;
    const ready = () => {
      opened = true;
      sockets.push(tracked);
      slowestConnectMs = Math.max(slowestConnectMs, performance.now() - started);
      resolve();
    };
    socket.on('ping', () => tracked.pings++);
    socket.on('error', (error) => {
      if (errors.length < 10) errors.push(error.message);
    });
    socket.on('close', (code) => {
      if (!opened) {
        failedToOpen++;
        return resolve();
      }
      closedByCode[code] = (closedByCode[code] ?? 0) + 1;
    });
    // The service's socket is usable once it said hello (authenticated, registered); the bare one once open.
    if (token) socket.once('message', ready);
    else socket.once('open', ready);
  });
}

async function connectAll(wsUrl: string, count: number, batch: number, authenticated: boolean): Promise<void> {
  if (authenticated && tokens.length < count) throw new Error(`only ${tokens.length} users registered, ${count} sockets asked for`);
  // In batches, each waiting for the last: a burst of thousands of SYNs would overflow the listen backlog.
  for (let first = 0; first < count; first += batch) {
    const size = Math.min(batch, count - first);
    await Promise.all(Array.from({ length: size }, (_, i) => open(wsUrl, authenticated ? tokens[first + i] : undefined)));
  }
}

function status(): ClientStatus {
  let minPings = Number.POSITIVE_INFINITY;
  let maxPings = 0;
  let openCount = 0;
  for (const { socket, pings } of sockets) {
    if (socket.readyState === WebSocket.OPEN) openCount++;
    minPings = Math.min(minPings, pings);
    maxPings = Math.max(maxPings, pings);
  }
  return {
    type: 'status',
    open: openCount,
    closedByCode,
    failedToOpen,
    errors,
    minPings: sockets.length === 0 ? 0 : minPings,
    maxPings,
    slowestConnectMs,
  };
}

async function handle(message: ToClients): Promise<FromClients> {
  switch (message.type) {
    case 'register': {
      const accounts = await mapLimit(Array.from({ length: message.count }), message.concurrency, () => register(message.baseUrl));
      tokens.push(...accounts.map((a) => a.accessToken));
      // An idle keep-alive connection would hold a server file descriptor a socket could use.
      closeConnections();
      return { type: 'registered', count: tokens.length };
    }
    case 'connect':
      await connectAll(message.wsUrl, message.count, message.batch, message.authenticated);
      return status();
    case 'status':
      return status();
    case 'close':
      for (const { socket } of sockets) socket.terminate();
      return { type: 'closed' };
  }
}

process.on('message', (message: ToClients) => {
  handle(message).then(reply, (error: unknown) => reply({ type: 'failed', message: String(error) }));
});

// Orphaned by a harness that died: the sockets would otherwise keep this process alive.
process.once('disconnect', () => process.exit(0));
