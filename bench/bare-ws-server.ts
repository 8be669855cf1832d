import { WebSocketServer } from 'ws';

/**
 * The baseline for the socket benchmark: a bare `ws` server (the library the
 * service uses, with the same perMessageDeflate: false) that accepts every
 * connection and does nothing with it. What one idle socket costs here is
 * the floor for the service. Answers the memory probe like the service.
 */
const server = new WebSocketServer({
  host: process.env.HOST ?? '127.0.0.1',
  port: Number(process.env.PORT ?? 0),
  perMessageDeflate: false,
});
server.on('connection', (socket) => {
  // An unhandled 'error' event would crash the baseline on a client reset.
  socket.on('error', () => undefined);
});

process.once('SIGTERM', () => {
  for (const socket of server.clients) socket.terminate();
  server.close(() => process.exit(0));
});
