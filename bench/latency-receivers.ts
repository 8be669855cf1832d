import { WebSocket } from 'ws';
import { wallClockMs, type FromReceivers, type Recipient, type ToReceivers } from './lib/latency-ipc.ts';
import { mapLimit } from './lib/stats.ts';

/**
 * The recipients of the latency benchmark, as a child process of
 * bench/latency.ts: one authenticated socket per recipient that stamps the
 * arrival of every `tap` frame and acks it as the app does.
 */
const arrivals = new Map<string, number>();
const sockets: WebSocket[] = [];
const errorFrames: string[] = [];
let acksSent = 0;
let closed = 0;
let finishing = false;

const reply = (message: FromReceivers) => process.send!(message);

function connect(wsUrl: string, recipient: Recipient): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(wsUrl, { headers: { authorization: `Bearer ${recipient.accessToken}` }, perMessageDeflate: false });
    sockets.push(socket);
    socket.once('unexpected-response', (_request, response) => reject(new Error(`upgrade refused: ${response.statusCode}`)));
    socket.on('error', reject);
    socket.on('close', () => {
      if (!finishing) closed++;
    });
    socket.on('message', (data) => {
      // Stamped first: parsing is the receiver's cost, not the service's.
      const arrivedAt = wallClockMs();
      const frame = JSON.parse(data.toString()) as { type: string; tap?: { id: string; to: string } };
      if (frame.type === 'hello') return resolve();
      if (frame.type === 'error') {
        if (errorFrames.length < 20) errorFrames.push(data.toString());
        return;
      }
      if (frame.type !== 'tap' || frame.tap?.to !== recipient.userId) return;
      if (!arrivals.has(frame.tap.id)) arrivals.set(frame.tap.id, arrivedAt);
      socket.send(JSON.stringify({ type: 'ack', tapId: frame.tap.id, status: 'delivered' }));
      acksSent++;
    });
  });
}

process.on('message', (message: ToReceivers) => {
  switch (message.type) {
    case 'connect':
      // A few at a time, as a fleet of phones would come online, not a SYN flood.
      mapLimit(message.recipients, 20, (recipient) => connect(message.wsUrl, recipient)).then(
        () => reply({ type: 'ready', connected: sockets.length }),
        (error: unknown) => reply({ type: 'failed', message: String(error) }),
      );
      return;
    case 'clock':
      reply({ type: 'clock', sentAt: message.sentAt, remoteNow: wallClockMs() });
      return;
    case 'finish':
      // Frames of the last taps may still be on their way.
      setTimeout(() => {
        finishing = true;
        reply({ type: 'arrivals', ids: [...arrivals.keys()], times: [...arrivals.values()], acksSent, errorFrames, closed });
        // The parent ends this process once it has the answer (exiting here could beat the message to it).
        for (const socket of sockets) socket.terminate();
      }, message.graceMs);
      return;
  }
});

// Orphaned by a harness that died: the sockets would otherwise keep this process alive.
process.once('disconnect', () => process.exit(0));
