import { readFileSync } from 'node:fs';
import type { OutgoingHttpHeaders } from 'node:http2';
import { rootCertificates } from 'node:tls';
import type { Clock } from '../../clock.ts';
import type { ApnsConfig, ApnsEnvironment } from '../../config.ts';
import type { Logger } from '../../logger.ts';
import type { Metrics } from '../../metrics.ts';
import { MAX_PAYLOAD_BYTES } from '../payload.ts';
import type { PushNotification, PushOutcome, PushSender, PushSenderHealth } from '../sender.ts';
import { ConcurrencyLimit } from './concurrency-limit.ts';
import { ApnsConnection, type ExchangeResult } from './connection.ts';
import { ProviderToken, loadSigningKey } from './provider-token.ts';
import { EXPIRED_PROVIDER_TOKEN, classifyAnswer, parseErrorBody } from './responses.ts';

export const APNS_ORIGINS: Record<ApnsEnvironment, string> = {
  production: 'https://api.push.apple.com:443',
  sandbox: 'https://api.sandbox.push.apple.com:443',
};

export interface ApnsClientOptions {
  config: ApnsConfig;
  clock: Clock;
  logger: Logger;
  metrics: Metrics;
  /** Idle connections are pinged this often (default 60 s). */
  pingIntervalMs?: number;
  /** A ping unanswered for this long drops the connection (default 10 s). */
  pingTimeoutMs?: number;
  /** How long close() lets requests in flight finish before dropping them (default 2 s). */
  closeGraceMs?: number;
}

interface Route {
  environment: ApnsEnvironment;
  connection: ApnsConnection;
  limit: ConcurrencyLimit;
}

const CLOSING: PushOutcome = { kind: 'retry', reason: 'Closing' };

/**
 * The APNs provider API over HTTP/2 with token authentication. One `send` is
 * one logical attempt; inside it the client only repeats what Apple asks it
 * to: a request refused by a connection going away, and a request whose
 * provider token APNs called expired (once, with a renewed token).
 */
export class ApnsClient implements PushSender {
  readonly #config: ApnsConfig;
  readonly #logger: Logger;
  readonly #metrics: Metrics;
  readonly #token: ProviderToken;
  readonly #routes: Record<ApnsEnvironment, Route>;
  readonly #closeGraceMs: number;
  /** Per environment, the credential error still standing (cleared by an accepted push). */
  readonly #failing = new Map<ApnsEnvironment, string>();
  #closed: Promise<void> | undefined;

  constructor(options: ApnsClientOptions) {
    const { config, clock, logger } = options;
    this.#config = config;
    this.#logger = logger;
    this.#metrics = options.metrics;
    this.#closeGraceMs = options.closeGraceMs ?? 2_000;
    this.#token = new ProviderToken({ key: loadSigningKey(config.key), keyId: config.keyId, teamId: config.teamId, clock });
    // Extra trust on top of the public roots, never instead of verification.
    const ca = config.caPath === undefined ? undefined : [...rootCertificates, readFileSync(config.caPath, 'utf8')];
    const route = (environment: ApnsEnvironment): Route => ({
      environment,
      limit: new ConcurrencyLimit(config.concurrency),
      connection: new ApnsConnection({
        origin: config.origin ?? APNS_ORIGINS[environment],
        ca,
        environment,
        logger,
        pingIntervalMs: options.pingIntervalMs ?? 60_000,
        pingTimeoutMs: options.pingTimeoutMs ?? 10_000,
      }),
    });
    this.#routes = { production: route('production'), sandbox: route('sandbox') };
  }

  async send(notification: PushNotification): Promise<PushOutcome> {
    if (Buffer.byteLength(notification.payload, 'utf8') > MAX_PAYLOAD_BYTES) {
      return { kind: 'permanent', status: 413, reason: 'PayloadTooLarge' };
    }
    if (this.#closed) return CLOSING;
    const route = this.#routes[this.#config.forcedEnvironment ?? notification.environment];
    if (!(await route.limit.acquire())) return CLOSING;
    try {
      return await this.#attempt(route, notification);
    } finally {
      route.limit.release();
    }
  }

  health(): PushSenderHealth {
    const reasons = [...this.#failing.values()];
    const latest = reasons.at(-1);
    return latest === undefined ? { state: 'ok' } : { state: 'failing', reason: latest };
  }

  close(): Promise<void> {
    this.#closed ??= (async () => {
      const routes = Object.values(this.#routes);
      for (const route of routes) route.limit.close();
      await Promise.all(routes.map((route) => route.connection.close(this.#closeGraceMs)));
    })();
    return this.#closed;
  }

  async #attempt(route: Route, notification: PushNotification): Promise<PushOutcome> {
    const token = this.#token.current();
    let result = await this.#exchange(route, notification, token);
    if (result.kind === 'answer' && isExpiredProviderToken(result.answer.status, result.answer.body)) {
      const renewed = this.#token.renewAfterExpired(token);
      if (renewed === undefined) {
        this.#logger.error(
          { environment: route.environment, tokenAgeMinutes: Math.round(this.#token.age() / 60_000) },
          'APNs called a provider token younger than 20 minutes expired: check the system clock',
        );
      } else {
        result = await this.#exchange(route, notification, renewed);
      }
    }
    return this.#conclude(route, notification, result);
  }

  /** One request, resent once on a new connection if the first was refused by one going away. */
  async #exchange(route: Route, notification: PushNotification, token: string): Promise<ExchangeResult> {
    const headers = requestHeaders(notification, token, topicFor(this.#config, notification.platform));
    const first = await this.#timed(route, headers, notification.payload);
    if (first.kind !== 'refused') return first;
    this.#logger.info({ environment: route.environment, reason: first.reason }, 'APNs refused a stream while going away; resending');
    return this.#timed(route, headers, notification.payload);
  }

  async #timed(route: Route, headers: OutgoingHttpHeaders, body: string): Promise<ExchangeResult> {
    const started = performance.now();
    const result = await route.connection.exchange(headers, body, this.#config.timeoutMs);
    const status = result.kind === 'answer' ? String(result.answer.status) : 'error';
    this.#metrics.apnsLatency.observe({ status }, (performance.now() - started) / 1000);
    return result;
  }

  #conclude(route: Route, notification: PushNotification, result: ExchangeResult): PushOutcome {
    const { environment } = route;
    if (result.kind === 'refused') return { kind: 'retry', reason: 'GoAway' };
    if (result.kind === 'failed') return { kind: 'retry', reason: result.reason };
    const outcome = classifyAnswer(result.answer, notification.apnsId);
    const tokenPrefix = notification.deviceToken.slice(0, 8);
    switch (outcome.kind) {
      case 'accepted':
        if (this.#failing.delete(environment)) this.#logger.info({ environment }, 'APNs accepts our credentials again');
        break;
      case 'misconfigured': {
        // Loud once per change, not once per push: every push fails the same way meanwhile.
        const known = this.#failing.get(environment) === outcome.reason;
        this.#failing.delete(environment);
        this.#failing.set(environment, outcome.reason);
        this.#logger[known ? 'debug' : 'error'](
          { environment, status: outcome.status, reason: outcome.reason },
          'APNs rejected our credentials: no push will get through until APNS_KEY/APNS_KEY_PATH, APNS_KEY_ID and APNS_TEAM_ID are fixed',
        );
        break;
      }
      case 'invalid-token':
        if (outcome.reason === 'BadDeviceToken') {
          this.#logger.warn(
            { environment, tokenPrefix },
            `APNs says BadDeviceToken: usually a ${environment === 'production' ? 'sandbox' : 'production'} token sent to ${environment}`,
          );
        }
        break;
      case 'retry':
        if (outcome.reason === 'TooManyProviderTokenUpdates') {
          this.#logger.warn({ environment }, 'APNs says the provider token is renewed too often');
        }
        break;
      case 'permanent':
        break;
    }
    return outcome;
  }
}

/** A watch app registers its own token, which APNs accepts only under the watch app's bundle id. */
export function topicFor(config: Pick<ApnsConfig, 'bundleId' | 'watchBundleId'>, platform: PushNotification['platform']): string {
  return platform === 'watchos' ? config.watchBundleId : config.bundleId;
}

function requestHeaders(notification: PushNotification, token: string, topic: string): OutgoingHttpHeaders {
  const headers: OutgoingHttpHeaders = {
    ':method': 'POST',
    ':path': `/3/device/${encodeURIComponent(notification.deviceToken)}`,
    authorization: `bearer ${token}`,
    'apns-topic': topic,
    // A tap is a visible alert on iPhone and watch alike: type alert, delivered at once (10).
    // Priority 5 is for background pushes only, which watchOS throttles and may hold for hours.
    'apns-push-type': 'alert',
    'apns-priority': '10',
    'apns-expiration': String(Math.max(0, Math.floor(notification.expiresAt / 1000))),
    'apns-id': notification.apnsId,
    'content-type': 'application/json',
  };
  if (notification.collapseId !== undefined) headers['apns-collapse-id'] = notification.collapseId;
  return headers;
}

function isExpiredProviderToken(status: number, body: string): boolean {
  return status === 403 && parseErrorBody(status, body).reason === EXPIRED_PROVIDER_TOKEN;
}
