import type { RawData, WebSocket } from 'ws';
import { AppError, isAppError, type ErrorCode } from '../errors.ts';
import type { TapView } from '../modules/taps/schemas.ts';
import { SYNC_PAGE_SIZE } from '../modules/taps/service.ts';
import { toCursor } from '../modules/taps/view.ts';
import type { BusEvent } from './events.ts';
import type { GatewayDeps } from './gateway-deps.ts';
import { CloseCodes, type ClientMessage, type CloseCode, type ServerMessage } from './protocol.ts';
import type { RegisteredConnection } from './registry.ts';

const CLOSE_HANDSHAKE_MS = 5000;

type State = 'authenticating' | 'opening' | 'open' | 'closed';

interface Authenticated {
  userId: string;
  deviceId: string;
  expiresAt: number;
}

/**
 * One client socket: authentication, the per-connection limits, the
 * messages it sends, and the events it receives from the bus. During a sync,
 * live taps are held back and sent after the replay (without the ones the
 * replay already carried), so the device sees its log in order.
 */
export class ClientConnection implements RegisteredConnection {
  userId = '';
  deviceId = '';
  tokenExpiresAt = 0;
  /** Cleared by each heartbeat, set by each pong: a connection still false at the next beat is dead. */
  alive = true;

  readonly #socket: WebSocket;
  readonly #deps: GatewayDeps;
  #state: State = 'authenticating';
  #tokens: number;
  #refilledAt: number;
  #authTimer: NodeJS.Timeout | undefined;
  #unsubscribe: (() => void) | undefined;
  /** Client messages that arrived while the connection was being opened. */
  #inbox: Array<{ data: RawData; isBinary: boolean }> | undefined;
  /** Bus events that arrived before hello was sent. */
  #early: BusEvent[] | undefined;
  /** Live taps held back while a sync replays. */
  #heldBack: TapView[] | undefined;
  #syncs: Promise<void> = Promise.resolve();
  /**
   * The newest cursor a replay carried. A tap commits before it is announced,
   * so a replay may already have carried a tap whose live event comes later:
   * live taps at or below this cursor are not sent again.
   */
  #replayedUpTo = 0;

  constructor(socket: WebSocket, deps: GatewayDeps) {
    this.#socket = socket;
    this.#deps = deps;
    this.#tokens = deps.config.messageBurst;
    this.#refilledAt = deps.clock.now();
    socket.on('message', (data, isBinary) => this.#onMessage(data, isBinary));
    socket.on('pong', () => {
      this.alive = true;
    });
    socket.on('close', (code) => this.#cleanup(code));
  }

  /**
   * With a principal from the upgrade's Authorization header, or waiting for
   * an auth message. With a cursor, the device's missed taps are replayed
   * right after hello, before any live tap.
   */
  start(principal: Authenticated | undefined, resumeFrom: string | undefined): void {
    if (principal) {
      void this.#open(principal, resumeFrom);
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

  /** Delivers a bus event addressed to this connection's user. */
  deliver(event: BusEvent, frame: () => string): void {
    if (this.#state === 'closed') return;
    if (this.#early) {
      this.#early.push(event);
      return;
    }
    switch (event.type) {
      case 'tap.created':
        // The device that sent the tap has its answer (tap.sent or the HTTP response).
        if (event.tap.from === this.userId && event.originDeviceId === this.deviceId) return;
        if (Number(event.tap.cursor) <= this.#replayedUpTo) return;
        if (this.#heldBack) this.#heldBack.push(event.tap);
        else this.#sendRaw(frame(), 'tap');
        return;
      case 'device.removed':
        if (event.deviceId === this.deviceId) this.close(CloseCodes.DEVICE_REVOKED, event.reason);
        return;
      case 'user.deleted':
        this.close(CloseCodes.ACCOUNT_DELETED);
        return;
      default:
        this.#sendRaw(frame(), event.type);
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

  async #open(principal: Authenticated, resumeFrom: string | undefined): Promise<void> {
    clearTimeout(this.#authTimer);
    this.#state = 'opening';
    this.#inbox = [];
    try {
      const { cursor: latest, partnerIds: partners } = await this.#deps.database.run('connectionSnapshot', { userId: principal.userId });
      const cursor = toCursor(latest);
      if (this.#state !== 'opening') return;
      this.userId = principal.userId;
      this.deviceId = principal.deviceId;
      this.tokenExpiresAt = principal.expiresAt;
      const { evicted, cameOnline } = this.#deps.registry.add(this);
      for (const old of evicted) old.close(CloseCodes.REPLACED);
      this.#early = [];
      this.#unsubscribe = this.#deps.subscribe(this);
      this.#state = 'open';
      if (resumeFrom !== undefined) this.#heldBack = [];
      this.#deps.metrics.wsConnections.inc();
      this.send({
        type: 'hello',
        userId: this.userId,
        deviceId: this.deviceId,
        cursor,
        heartbeatSeconds: Math.round(this.#deps.config.heartbeatMs / 1000),
        tokenExpiresAt: new Date(this.tokenExpiresAt).toISOString(),
        partners: partners.map((userId) => ({ userId, online: this.#deps.registry.isUserOnline(userId) })),
      });
      const early = this.#early;
      this.#early = undefined;
      for (const event of early) this.#deps.deliverOne(this, event);
      if (cameOnline) this.#deps.announcePresence(this.userId, partners);
      if (resumeFrom !== undefined) void this.#queueSync(Number(resumeFrom), undefined).catch(() => undefined);
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
        const principal = await this.#deps.auth.authenticate(message.token);
        await this.#open(principal, message.cursor);
      } catch (error) {
        this.close(CloseCodes.AUTH_FAILED, isAppError(error) ? error.message : undefined);
      }
      return;
    }
    const me = { userId: this.userId, deviceId: this.deviceId };
    switch (message.type) {
      case 'auth': {
        const renewed = await this.#deps.auth.authenticate(message.token);
        if (renewed.userId !== this.userId || renewed.deviceId !== this.deviceId) {
          this.close(CloseCodes.AUTH_FAILED, 'token belongs to another device');
          return;
        }
        this.tokenExpiresAt = renewed.expiresAt;
        this.send({ type: 'auth.ok', tokenExpiresAt: new Date(renewed.expiresAt).toISOString(), ref: message.ref });
        return;
      }
      case 'tap.send': {
        const { tap, created } = await this.#deps.taps.send(
          me,
          { id: message.id, to: message.to, intensity: message.intensity, pattern: message.pattern },
          'websocket',
        );
        this.send({ type: 'tap.sent', tap, created, ref: message.ref });
        return;
      }
      case 'ack':
        await this.#deps.acks.ack(me, message.tapId, message.status, 'websocket');
        return;
      case 'sync':
        return this.#queueSync(Number(message.after), message.ref);
      case 'ping':
        this.send({ type: 'pong', ref: message.ref });
        return;
    }
  }

  /** Syncs on one connection run one after another, each with its own cut-over. */
  #queueSync(after: number, ref: string | undefined): Promise<void> {
    const run = this.#syncs.then(() => this.#sync(after, ref));
    this.#syncs = run.catch(() => undefined);
    return run;
  }

  async #sync(after: number, ref: string | undefined): Promise<void> {
    if (this.#state !== 'open') return;
    // Already holding back when the replay was asked for at connect time.
    this.#heldBack ??= [];
    let cursor = after;
    let hasMore = true;
    try {
      let sent = 0;
      const max = this.#deps.config.syncMaxTaps;
      while (hasMore && sent < max && this.#state === 'open') {
        if (!(await this.#drained())) return this.close(CloseCodes.SLOW_CONSUMER);
        const page = await this.#deps.taps.since(this.userId, cursor, Math.min(SYNC_PAGE_SIZE, max - sent));
        for (const tap of page.taps) this.send({ type: 'tap', tap });
        sent += page.taps.length;
        cursor = Number(page.taps.at(-1)?.cursor ?? cursor);
        hasMore = page.hasMore;
      }
      this.send({ type: 'sync.done', cursor: String(cursor), hasMore, ref });
    } finally {
      this.#replayedUpTo = Math.max(this.#replayedUpTo, cursor);
      const held = this.#heldBack;
      this.#heldBack = undefined;
      // Cut over: what arrived live during the replay, minus what it carried.
      for (const tap of held) if (Number(tap.cursor) > this.#replayedUpTo) this.send({ type: 'tap', tap });
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
    this.#deps.metrics.wsCloses.inc({ code: String(code) });
    if (!wasOpen) return;
    this.#deps.metrics.wsConnections.dec();
    const { wentOffline } = this.#deps.registry.remove(this);
    if (wentOffline) this.#deps.announcePresence(this.userId);
  }
}

const tapIdOf = (message: ClientMessage): string | undefined => (message.type === 'ack' ? message.tapId : undefined);
