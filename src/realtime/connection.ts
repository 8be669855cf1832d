import type { RawData, WebSocket } from 'ws';
import { AppError, isAppError, type ErrorCode } from '../errors.ts';
import type { Principal } from '../modules/auth/service.ts';
import type { ConnectionDeps } from './connection-deps.ts';
import type { BusEvent } from './events.ts';
import { Outbox } from './outbox.ts';
import { CloseCodes, type ClientMessage, type CloseCode, type ServerMessage } from './protocol.ts';
import type { RegisteredConnection } from './registry.ts';

const CLOSE_HANDSHAKE_MS = 5000;
/** Live entries a connection holds while earlier ones are read; more are simply read later. */
const MAX_HELD_ENTRIES = 256;

type State = 'authenticating' | 'opening' | 'open' | 'closed';

/**
 * One client socket: authentication, the per-connection limits, the
 * messages it sends, and its user's events. The log entries go through an
 * Outbox, which sends each exactly once, in order, replaying from the
 * database whatever the device has not seen.
 */
export class ClientConnection implements RegisteredConnection {
  userId = '';
  deviceId = '';
  tokenExpiresAt = 0;
  /** Cleared by each heartbeat, set by each pong: a connection still false at the next beat is dead. */
  alive = true;

  readonly #socket: WebSocket;
  readonly #deps: ConnectionDeps;
  readonly #openedAt = performance.now();
  #state: State = 'authenticating';
  #tokens: number;
  #refilledAt: number;
  #authTimer: NodeJS.Timeout | undefined;
  #unsubscribe: (() => void) | undefined;
  /** Client messages that arrived while the connection was being opened. */
  #inbox: Array<{ data: RawData; isBinary: boolean }> | undefined;
  readonly #outbox: Outbox;

  constructor(socket: WebSocket, deps: ConnectionDeps) {
    this.#socket = socket;
    this.#deps = deps;
    this.#tokens = deps.config.messageBurst;
    this.#refilledAt = deps.clock.now();
    this.#outbox = new Outbox({
      read: (after, limit) => deps.readLog(this.userId, after, limit),
      send: (frame, type) => this.#sendRaw(frame, type),
      drained: () => this.#drained(),
      tooSlow: () => this.close(CloseCodes.SLOW_CONSUMER),
      failed: (error) => {
        deps.logger.error({ err: error, userId: this.userId }, 'reading the log for a connection failed');
        this.close(CloseCodes.INTERNAL);
      },
      repaired: (count) => deps.metrics.logRepairs.inc(count),
      pageSize: deps.config.replayPageSize,
      gapRepairMs: deps.config.gapRepairMs,
      maxHeld: MAX_HELD_ENTRIES,
    });
    socket.on('message', (data, isBinary) => this.#onMessage(data, isBinary));
    socket.on('pong', () => {
      this.alive = true;
    });
    socket.on('close', (code) => this.#cleanup(code));
  }

  /**
   * With a principal from the upgrade's Authorization header, or waiting for
   * an auth message. With a cursor, the log after it is replayed right after
   * hello, before anything live.
   */
  start(principal: Principal | undefined, resumeFrom: string | undefined): void {
    if (principal) {
      void this.#open(principal, resumeFrom, undefined);
      return;
    }
    this.#authTimer = setTimeout(() => this.close(CloseCodes.AUTH_FAILED, 'no auth message in time'), this.#deps.config.authTimeoutMs);
    this.#authTimer.unref();
  }

  send(message: ServerMessage): void {
    this.#sendRaw(JSON.stringify(message), message.type);
  }

  close(close: CloseCode, detail?: string): void {
    if (this.#state === 'closed') return;
    this.#cleanup(close.code);
    const reason = detail ? `${close.reason}: ${detail}`.slice(0, 120) : close.reason;
    this.#socket.close(close.code, reason);
    // A peer that never completes the closing handshake is cut off. A slow
    // consumer gets the same time to drain its backlog and read the close code.
    setTimeout(() => this.#socket.terminate(), CLOSE_HANDSHAKE_MS).unref();
  }

  terminate(): void {
    this.#cleanup(1006);
    this.#socket.terminate();
  }

  ping(): void {
    this.alive = false;
    this.#socket.ping();
  }

  /** The periodic log check found the user's log at `head`: anything lost on the way is fetched. */
  knowHead(head: number): void {
    if (this.#state === 'open') this.#outbox.knowHead(head);
  }

  /** An event addressed to this connection's user. */
  #deliver(event: BusEvent, frame: () => string): void {
    if (this.#state === 'closed') return;
    switch (event.type) {
      case 'entry':
        this.#outbox.offer(event.message, frame());
        return;
      case 'device.removed':
        if (event.deviceId === this.deviceId) this.close(CloseCodes.DEVICE_REVOKED, event.reason);
        return;
      case 'user.deleted':
        this.close(CloseCodes.ACCOUNT_DELETED);
        return;
      case 'presence':
        if (this.#state === 'open') this.#sendRaw(frame(), event.type);
        return;
    }
  }

  #sendRaw(frame: string, type: string): void {
    if (this.#state === 'closed' || this.#socket.readyState !== this.#socket.OPEN) return;
    if (this.#socket.bufferedAmount > this.#deps.config.maxBufferedBytes) {
      this.close(CloseCodes.SLOW_CONSUMER);
      return;
    }
    this.#socket.send(frame);
    this.#deps.metrics.wsMessages.inc({ direction: 'out', type });
  }

  /**
   * Subscribes first, then reads: whatever happens after the read (a tap, a
   * sign-out) is seen through the subscription, and the Outbox drops what the
   * read already covered.
   */
  async #open(principal: Principal, resumeFrom: string | undefined, ref: string | undefined): Promise<void> {
    clearTimeout(this.#authTimer);
    this.#state = 'opening';
    this.#inbox = [];
    this.userId = principal.userId;
    this.deviceId = principal.deviceId;
    this.tokenExpiresAt = principal.expiresAt;
    const subscription = this.#deps.subscribe(this.userId, (event, frame) => this.#deliver(event, frame));
    this.#unsubscribe = () => subscription.unsubscribe();
    try {
      await subscription.ready;
      if (this.#state !== 'opening') return;
      const snapshot = await this.#deps.snapshot(principal);
      if (this.#state !== 'opening') return;
      if (!snapshot.deviceActive) return this.close(CloseCodes.DEVICE_REVOKED, 'this device was signed out');
      const { evicted } = this.#deps.registry.add(this);
      for (const old of evicted) old.close(CloseCodes.REPLACED);
      this.#state = 'open';
      const [cameOnline, online] = await Promise.all([
        this.#deps.presence.opened(this),
        this.#deps.presence.onlineUsers(snapshot.partnerIds),
      ]);
      if (this.#state !== 'open') return;
      this.#deps.metrics.wsConnections.inc();
      this.#deps.metrics.wsConnectionsOpened.inc();
      this.#deps.logger.info(
        { userId: this.userId, deviceId: this.deviceId, cursor: resumeFrom ?? null, head: snapshot.head },
        'websocket connected',
      );
      this.send({
        type: 'hello',
        userId: this.userId,
        deviceId: this.deviceId,
        cursor: String(snapshot.head),
        heartbeatSeconds: Math.round(this.#deps.config.heartbeatMs / 1000),
        tokenExpiresAt: new Date(this.tokenExpiresAt).toISOString(),
        partners: snapshot.partnerIds.map((userId) => ({ userId, online: online.has(userId) })),
        ...(ref ? { ref } : {}),
      });
      // A device ahead of the log (a database restored from a backup) starts from the log's head.
      const from = resumeFrom === undefined ? snapshot.head : Math.min(Number(resumeFrom), snapshot.head);
      this.#outbox.start(from, snapshot.head);
      if (cameOnline) this.#deps.announcePresence(this.userId, snapshot.partnerIds);
      const inbox = this.#inbox;
      this.#inbox = undefined;
      for (const { data, isBinary } of inbox) this.#receive(data, isBinary);
    } catch (error) {
      this.#deps.logger.error({ err: error }, 'opening a connection failed');
      this.close(CloseCodes.INTERNAL);
    }
  }

  #onMessage(data: RawData, isBinary: boolean): void {
    if (this.#state === 'closed') return;
    if (!this.#takeToken()) {
      this.close(CloseCodes.POLICY);
      return;
    }
    this.#receive(data, isBinary);
  }

  #receive(data: RawData, isBinary: boolean): void {
    if (this.#inbox) {
      this.#inbox.push({ data, isBinary });
      return;
    }
    if (isBinary) return this.#error('INVALID_INPUT', 'Send JSON text frames');
    let value: unknown;
    try {
      value = JSON.parse(data.toString());
    } catch {
      return this.#error('INVALID_INPUT', 'Message is not valid JSON');
    }
    const parsed = this.#deps.parse(value);
    if (!parsed.ok) return this.#error('INVALID_INPUT', parsed.detail, parsed.ref);
    this.#deps.metrics.wsMessages.inc({ direction: 'in', type: parsed.message.type });
    this.#handle(parsed.message).catch((error: unknown) => {
      if (isAppError(error)) return this.#error(error.code, error.message, parsed.message.ref, tapIdOf(parsed.message));
      this.#deps.logger.error({ err: error, type: parsed.message.type }, 'websocket message failed');
      this.#error('INTERNAL_ERROR', 'Something went wrong on our side', parsed.message.ref);
    });
  }

  async #handle(message: ClientMessage): Promise<void> {
    if (this.#state === 'authenticating') {
      if (message.type !== 'auth') throw new AppError('UNAUTHORIZED', 'Authenticate first: {"type":"auth","token":"<access token>"}');
      try {
        const principal = await this.#deps.authenticate(message.token);
        if (this.#state !== 'authenticating') return;
        await this.#open(principal, message.cursor, message.ref);
      } catch (error) {
        this.close(CloseCodes.AUTH_FAILED, isAppError(error) ? error.message : undefined);
      }
      return;
    }
    const me = { userId: this.userId, deviceId: this.deviceId };
    switch (message.type) {
      case 'auth': {
        // The same checks as at connect, the device's existence included: a signed-out device cannot renew.
        const renewed = await this.#deps.authenticate(message.token);
        if (renewed.userId !== this.userId || renewed.deviceId !== this.deviceId) {
          this.close(CloseCodes.AUTH_FAILED, 'token belongs to another device');
          return;
        }
        this.tokenExpiresAt = renewed.expiresAt;
        this.send({ type: 'auth.ok', tokenExpiresAt: new Date(renewed.expiresAt).toISOString(), ref: message.ref });
        return;
      }
      case 'tap.send': {
        const { tap, created } = await this.#deps.sendTap(me, {
          id: message.id,
          to: message.to,
          intensity: message.intensity,
          pattern: message.pattern,
        });
        this.send({ type: 'tap.sent', tap, created, ref: message.ref });
        return;
      }
      case 'ack': {
        const { advanced } = await this.#deps.ack(me, message.tapId, message.status);
        if (message.ref) this.send({ type: 'ack.ok', tapId: message.tapId, status: message.status, advanced, ref: message.ref });
        return;
      }
      case 'ping':
        this.send({ type: 'pong', ref: message.ref });
        return;
    }
  }

  /**
   * A replay respects backpressure: it waits for the client to take what was
   * sent, and drops a client that cannot take anything for too long.
   */
  async #drained(): Promise<boolean> {
    const threshold = this.#deps.config.maxBufferedBytes / 2;
    const deadline = performance.now() + this.#deps.config.drainTimeoutMs;
    while (this.#socket.bufferedAmount > threshold) {
      if (this.#state !== 'open' || performance.now() > deadline) return false;
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    return this.#state === 'open';
  }

  #error(code: ErrorCode, detail: string, ref?: string, tapId?: string): void {
    this.send({ type: 'error', code, detail, ...(ref ? { ref } : {}), ...(tapId ? { tapId } : {}) });
  }

  /** Token bucket: `messagesPerSecond` sustained, `messageBurst` at once. */
  #takeToken(): boolean {
    const now = this.#deps.clock.now();
    const { messagesPerSecond, messageBurst } = this.#deps.config;
    this.#tokens = Math.min(messageBurst, this.#tokens + ((now - this.#refilledAt) / 1000) * messagesPerSecond);
    this.#refilledAt = now;
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
  }

  #cleanup(code: number): void {
    if (this.#state === 'closed') return;
    const wasOpen = this.#state === 'open';
    this.#state = 'closed';
    clearTimeout(this.#authTimer);
    this.#unsubscribe?.();
    this.#outbox.stop();
    this.#deps.metrics.wsCloses.inc({ code: String(code) });
    if (!wasOpen) return;
    this.#deps.logger.info(
      {
        userId: this.userId,
        deviceId: this.deviceId,
        code,
        seconds: Math.round(performance.now() - this.#openedAt) / 1000,
        cursor: this.#outbox.sentUpTo,
      },
      'websocket closed',
    );
    this.#deps.metrics.wsConnections.dec();
    if (!this.#deps.registry.remove(this)) return;
    void this.#deps.presence
      .closed(this)
      .then((wentOffline) => wentOffline && this.#deps.announcePresence(this.userId))
      .catch((error: unknown) => this.#deps.logger.warn({ err: error, userId: this.userId }, 'presence update failed'));
  }
}

const tapIdOf = (message: ClientMessage): string | undefined => (message.type === 'ack' ? message.tapId : undefined);
