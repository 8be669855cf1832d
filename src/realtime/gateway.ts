import websocket from '@fastify/websocket';
import type { ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { WebSocket } from 'ws';
import type { AppContext } from '../context.ts';
import type { App } from '../http/app-type.ts';
import { optionalAuth } from '../http/auth.ts';
import { describeValidationError } from '../http/error-handler.ts';
import { createAjv } from '../http/validation.ts';
import { childLogger } from '../logger.ts';
import { ClientConnection } from './connection.ts';
import { realtimeProcedures } from './snapshot.ts';
import type { BusEvent } from './events.ts';
import type { ConnectionDeps, ParsedMessage } from './connection-deps.ts';
import { ClientMessages, CloseCodes, ConnectQuery, type ClientMessage, type ClientMessageType, type ServerMessage } from './protocol.ts';

/** How long shutdown waits for clients to complete the close handshake. */
const SHUTDOWN_DRAIN_MS = 2000;

/**
 * The WebSocket endpoint GET /v1/ws: upgrades, authenticates, and connects
 * each socket to its user's events. One heartbeat timer serves every
 * connection (per-socket timers would cost memory at tens of thousands).
 */
export async function registerGateway(app: App, ctx: AppContext): Promise<void> {
  const deps = connectionDeps(ctx);
  const heartbeat = setInterval(() => beat(ctx), ctx.config.realtime.heartbeatMs);
  heartbeat.unref();
  const logCheck = setInterval(() => ctx.liveness.checkLogs(), ctx.config.realtime.logCheckMs);
  logCheck.unref();

  await app.register(websocket, {
    options: { maxPayload: ctx.config.realtime.maxMessageBytes, perMessageDeflate: false },
    errorHandler: (error, socket) => onSocketError(ctx, error, socket),
    preClose: async () => {
      clearInterval(heartbeat);
      clearInterval(logCheck);
      await shutdown(ctx, app);
    },
  });

  app.get(
    '/v1/ws',
    { websocket: true, onRequest: optionalAuth(ctx.services.auth), schema: { querystring: ConnectQuery } },
    (socket, request) => {
      // @fastify/websocket's error listener keeps the upgrade's request and
      // reply alive for the socket's whole life (about 2 KiB each, times tens
      // of thousands of idle sockets); this one keeps nothing of them.
      socket.removeAllListeners('error');
      socket.on('error', (error) => onSocketError(ctx, error, socket));
      releaseUpgradeResponse(request.raw.socket);
      const connection = new ClientConnection(socket, deps);
      connection.start(request.principal ?? undefined, request.query.cursor);
    },
  );

  app.addHook('onClose', async () => {
    clearInterval(heartbeat);
    clearInterval(logCheck);
  });
}

/**
 * The upgrade's ServerResponse stays attached to the TCP socket (Node's
 * internal `_httpMessage`), and with it the request and Fastify's reply: about
 * 2 KiB per socket that will never be used. Detaching it is what Node does when
 * a response finishes; if the internals differ, nothing happens.
 */
function releaseUpgradeResponse(tcp: Socket): void {
  const response = (tcp as Socket & { _httpMessage?: ServerResponse | null })._httpMessage;
  if (response && typeof response.detachSocket === 'function') response.detachSocket(tcp);
}

/**
 * Protocol errors are the client's (an oversized frame, a bad opcode): ws has
 * already closed with the right code (1009, 1002), so they are only noted.
 */
function onSocketError(ctx: AppContext, error: Error, socket: WebSocket): void {
  const code = (error as { code?: string }).code;
  if (code?.startsWith('WS_ERR_')) {
    ctx.logger.info({ code }, 'websocket protocol error');
    return;
  }
  ctx.logger.error({ err: error }, 'websocket error');
  socket.terminate();
}

/**
 * Each beat: drop the connections that did not answer the previous ping, and
 * those whose access token expired without an in-band renewal; ping the rest.
 */
function beat(ctx: AppContext): void {
  const now = ctx.clock.now();
  for (const connection of ctx.connections.all()) {
    if (!connection.alive) connection.terminate();
    else if (connection.tokenExpiresAt <= now) connection.close(CloseCodes.TOKEN_EXPIRED);
    else connection.ping();
  }
}

/**
 * Closes every socket with 1012 (service restart) so clients reconnect (to
 * another instance) and sync; waits for the closing handshakes, then cuts off
 * whoever did not answer.
 */
async function shutdown(ctx: AppContext, app: App): Promise<void> {
  for (const connection of [...ctx.connections.all()]) connection.close(CloseCodes.RESTART);
  const sockets = app.websocketServer.clients;
  // Sockets still authenticating are not registered connections.
  for (const socket of sockets) socket.close(CloseCodes.RESTART.code, CloseCodes.RESTART.reason);
  const deadline = Date.now() + SHUTDOWN_DRAIN_MS;
  while (sockets.size > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
  for (const socket of sockets) socket.terminate();
}

function connectionDeps(ctx: AppContext): ConnectionDeps {
  const logger = childLogger(ctx.logger, 'realtime');
  const ajv = createAjv('strict');
  const validators = Object.fromEntries(Object.entries(ClientMessages).map(([type, schema]) => [type, ajv.compile(schema)])) as Record<
    ClientMessageType,
    ReturnType<typeof ajv.compile>
  >;

  const parse = (value: unknown): ParsedMessage => {
    if (typeof value !== 'object' || value === null || Array.isArray(value))
      return { ok: false, detail: 'A message is a JSON object with a "type"' };
    const { type, ref } = value as { type?: unknown; ref?: unknown };
    // Counted in code points, as the schema counts them.
    const safeRef = typeof ref === 'string' && ref.length > 0 && [...ref].length <= 64 ? ref : undefined;
    const validate = typeof type === 'string' && Object.hasOwn(validators, type) ? validators[type as ClientMessageType] : undefined;
    if (!validate)
      return { ok: false, detail: `Unknown message type; expected one of: ${Object.keys(validators).join(', ')}`, ref: safeRef };
    if (!validate(value)) {
      const error = validate.errors?.[0];
      const described = error ? describeValidationError('message', error) : { field: 'message', message: 'is invalid' };
      return { ok: false, detail: `${described.field} ${described.message}`, ref: safeRef };
    }
    return { ok: true, message: value as ClientMessage };
  };

  // One serialisation per event, however many connections receive it.
  const frames = new WeakMap<BusEvent, string>();
  const frameOf = (event: BusEvent): string => {
    let frame = frames.get(event);
    if (frame === undefined) {
      frame = JSON.stringify(toServerMessage(event));
      frames.set(event, frame);
    }
    return frame;
  };

  const { auth, taps, delivery } = ctx.services;
  return {
    config: ctx.config.realtime,
    clock: ctx.clock,
    logger,
    metrics: ctx.metrics,
    registry: ctx.connections,
    presence: ctx.presence,
    parse,
    authenticate: (token) => auth.authenticate(token),
    snapshot: (device) => ctx.database.run(realtimeProcedures.connectionSnapshot, device),
    readLog: (userId, after, limit) => delivery.readLog(userId, after, limit),
    sendTap: (device, body) => taps.send(device, body, 'websocket'),
    ack: (device, tapId, status) => delivery.ack(device, tapId, status, 'websocket'),
    subscribe: (userId, deliver) => ctx.bus.subscribe(userId, (event) => deliver(event, () => frameOf(event))),
    announcePresence: (userId, partners) => ctx.liveness.announcePresence(userId, partners),
  };
}

function toServerMessage(event: BusEvent): ServerMessage | undefined {
  switch (event.type) {
    case 'entry':
      return event.message;
    case 'presence':
      return { type: 'presence', userId: event.userId, online: event.online };
    default:
      return undefined;
  }
}
