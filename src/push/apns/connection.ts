import { connect, constants, type ClientHttp2Session, type ClientHttp2Stream, type OutgoingHttpHeaders } from 'node:http2';
import type { Logger } from '../../logger.ts';
import type { ApnsAnswer } from './responses.ts';

/** Why a request got no answer. */
export type TransportFailure = 'Timeout' | 'ConnectionError' | 'TlsError' | 'StreamReset' | 'Closing';

export type ExchangeResult =
  | { kind: 'answer'; answer: ApnsAnswer }
  /** APNs never processed it (GOAWAY, REFUSED_STREAM): resending cannot duplicate the notification. */
  | { kind: 'refused'; reason: string }
  | { kind: 'failed'; reason: TransportFailure };

export interface ApnsConnectionOptions {
  origin: string;
  /** Trusted CAs; undefined means Node's bundled roots. */
  ca?: string[];
  /** For log lines: which APNs environment this connection serves. */
  environment: string;
  logger: Logger;
  pingIntervalMs: number;
  pingTimeoutMs: number;
}

interface SessionState {
  session: ClientHttp2Session;
  /** Set when the peer announced it is going away; such a session takes no new streams. */
  goaway?: { code: number; lastStreamId: number };
  error?: Error;
  active: number;
  usedSincePing: boolean;
  pingTimer: NodeJS.Timeout;
  pingDeadline?: NodeJS.Timeout;
}

/** Error bodies are a few dozen bytes; anything past this is not worth keeping. */
const MAX_BODY_CHARS = 16_384;

/**
 * One long-lived HTTP/2 session to one APNs origin, opened on first use and
 * reopened lazily after GOAWAY, close or error. Idle sessions are pinged so a
 * dead path is noticed before a notification is lost in it.
 */
export class ApnsConnection {
  readonly #options: ApnsConnectionOptions;
  readonly #sessions = new Set<SessionState>();
  #current: SessionState | undefined;
  #closing = false;

  constructor(options: ApnsConnectionOptions) {
    this.#options = options;
  }

  /** Sends one request and waits for its answer, at most `timeoutMs` once the stream is open. */
  exchange(headers: OutgoingHttpHeaders, body: string, timeoutMs: number): Promise<ExchangeResult> {
    if (this.#closing) return Promise.resolve({ kind: 'failed', reason: 'Closing' });
    const state = this.#usableSession();
    let stream: ClientHttp2Stream;
    try {
      stream = state.session.request(headers);
    } catch {
      // The session began closing under us; nothing went on the wire.
      this.#retire(state);
      return Promise.resolve({ kind: 'refused', reason: 'SessionClosing' });
    }
    state.active += 1;
    state.usedSincePing = true;
    state.session.ref();

    return new Promise((resolve) => {
      let status: number | undefined;
      let apnsId: string | undefined;
      let responseBody = '';
      let ended = false;
      let streamError: unknown;
      let settled = false;

      const settle = (result: ExchangeResult) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        state.active -= 1;
        if (state.active === 0 && !this.#closing) state.session.unref();
        resolve(result);
      };
      const timer = setTimeout(() => {
        // RST_STREAM CANCEL frees the stream on both sides; the session stays usable.
        stream.close(constants.NGHTTP2_CANCEL);
        settle({ kind: 'failed', reason: 'Timeout' });
      }, timeoutMs);
      timer.unref();

      stream.on('response', (responseHeaders) => {
        status = Number(responseHeaders[':status']);
        const id = responseHeaders['apns-id'];
        apnsId = typeof id === 'string' ? id : undefined;
      });
      stream.setEncoding('utf8');
      stream.on('data', (chunk: string) => {
        if (responseBody.length < MAX_BODY_CHARS) responseBody += chunk;
      });
      stream.on('end', () => {
        ended = true;
      });
      stream.on('error', (error) => {
        streamError = error;
      });
      stream.on('close', () => {
        if (status !== undefined && ended) {
          settle({
            kind: 'answer',
            answer: apnsId === undefined ? { status, body: responseBody } : { status, apnsId, body: responseBody },
          });
          return;
        }
        settle(this.#unanswered(state, stream, streamError));
      });
      stream.end(body);
    });
  }

  /** Lets requests in flight finish for up to `graceMs`, then drops whatever is left. Never hangs. */
  async close(graceMs: number): Promise<void> {
    this.#closing = true;
    this.#current = undefined;
    await Promise.all([...this.#sessions].map((state) => closeSession(state, graceMs)));
  }

  #unanswered(state: SessionState, stream: ClientHttp2Stream, streamError: unknown): ExchangeResult {
    if (this.#closing) return { kind: 'failed', reason: 'Closing' };
    if (stream.rstCode === constants.NGHTTP2_REFUSED_STREAM || state.goaway !== undefined) {
      return { kind: 'refused', reason: stream.rstCode === constants.NGHTTP2_REFUSED_STREAM ? 'RefusedStream' : 'GoAway' };
    }
    const error = rootCause(streamError) ?? state.error;
    if (isTlsError(error)) return { kind: 'failed', reason: 'TlsError' };
    if (!state.session.destroyed && stream.rstCode !== undefined && stream.rstCode !== constants.NGHTTP2_NO_ERROR) {
      return { kind: 'failed', reason: 'StreamReset' };
    }
    return { kind: 'failed', reason: 'ConnectionError' };
  }

  #usableSession(): SessionState {
    const current = this.#current;
    if (current && current.goaway === undefined && !current.session.closed && !current.session.destroyed) return current;
    return this.#open();
  }

  #open(): SessionState {
    const { origin, ca, environment, logger } = this.#options;
    const session = connect(origin, ca === undefined ? {} : { ca });
    const state: SessionState = {
      session,
      active: 0,
      usedSincePing: false,
      pingTimer: setInterval(() => this.#keepAlive(state), this.#options.pingIntervalMs),
    };
    state.pingTimer.unref();
    session.on('connect', () => logger.debug({ environment }, 'APNs connection open'));
    session.on('error', (error: Error) => {
      state.error = error;
      if (isTlsError(error)) {
        logger.error({ environment, err: error }, 'TLS failure connecting to APNs: check APNS_CA_PATH and the certificate APNs presents');
      } else {
        logger.warn({ environment, err: error }, 'APNs connection failed');
      }
    });
    session.on('goaway', (code: number, lastStreamId: number, data?: Buffer) => {
      state.goaway = { code, lastStreamId };
      this.#retire(state);
      logger.info({ environment, code, lastStreamId, reason: goawayReason(data) }, 'APNs sent GOAWAY; new requests go on a new connection');
    });
    session.on('close', () => {
      this.#retire(state);
      this.#sessions.delete(state);
      clearInterval(state.pingTimer);
      clearTimeout(state.pingDeadline);
    });
    // An idle connection must not keep the process alive; requests ref it while they run.
    session.unref();
    this.#sessions.add(state);
    this.#current = state;
    return state;
  }

  #retire(state: SessionState): void {
    if (this.#current === state) this.#current = undefined;
  }

  #keepAlive(state: SessionState): void {
    const { session } = state;
    if (session.closed || session.destroyed || state.pingDeadline !== undefined) return;
    if (state.active > 0 || state.usedSincePing) {
      state.usedSincePing = false;
      return;
    }
    state.pingDeadline = setTimeout(() => {
      this.#options.logger.warn({ environment: this.#options.environment }, 'APNs connection did not answer a ping; dropping it');
      this.#retire(state);
      session.destroy();
    }, this.#options.pingTimeoutMs);
    state.pingDeadline.unref();
    try {
      session.ping(() => {
        clearTimeout(state.pingDeadline);
        state.pingDeadline = undefined;
      });
    } catch {
      // The session is going away on its own; the next request opens another.
      clearTimeout(state.pingDeadline);
      state.pingDeadline = undefined;
    }
  }
}

function closeSession(state: SessionState, graceMs: number): Promise<void> {
  const { session } = state;
  clearInterval(state.pingTimer);
  clearTimeout(state.pingDeadline);
  return new Promise((resolve) => {
    // Closing is deliberate: hold the process open until it is done.
    session.ref();
    const deadline = setTimeout(() => {
      session.destroy();
      resolve();
    }, graceMs);
    session.once('close', () => {
      clearTimeout(deadline);
      resolve();
    });
    if (session.destroyed) {
      clearTimeout(deadline);
      resolve();
    } else if (!session.closed) {
      session.close();
    }
  });
}

function goawayReason(data: Buffer | undefined): string | undefined {
  if (!data || data.length === 0) return undefined;
  try {
    const parsed: unknown = JSON.parse(data.toString('utf8'));
    const reason = typeof parsed === 'object' && parsed !== null ? (parsed as { reason?: unknown }).reason : undefined;
    return typeof reason === 'string' ? reason : undefined;
  } catch {
    return undefined;
  }
}

/** Streams cancelled by a failing session carry the session's error as their cause. */
function rootCause(error: unknown): Error | undefined {
  let current = error;
  while (current instanceof Error && current.cause instanceof Error) current = current.cause;
  return current instanceof Error ? current : undefined;
}

const TLS_ERROR = /^(ERR_TLS_|ERR_SSL_)|CERT|SELF_SIGNED|UNABLE_TO_|HOSTNAME_MISMATCH/;

function isTlsError(error: Error | undefined): boolean {
  const code = (error as { code?: unknown } | undefined)?.code;
  return typeof code === 'string' && TLS_ERROR.test(code);
}
