import type { PushOutcome } from '../sender.ts';

/**
 * How APNs answers map to outcomes, following Apple's "Handling notification
 * responses from APNs". The status decides when the reason is unknown:
 * another 4xx will not succeed as sent, another 5xx may later.
 */

/** The token no longer reaches the app: forget it. 410 (any reason) is also here. */
const INVALID_TOKEN_REASONS = new Set(['BadDeviceToken', 'Unregistered', 'ExpiredToken']);

/** Our credentials or key setup are wrong; no notification will pass until an operator acts. */
const MISCONFIGURED_REASONS = new Set([
  'InvalidProviderToken',
  'MissingProviderToken',
  'ExpiredProviderToken',
  'UnrelatedKeyIdInToken',
  'BadEnvironmentKeyIdInToken',
  // Spelling seen in some of Apple's answers and in FCM's relay of them.
  'BadEnvironmentKeyInToken',
]);

/** Apple's transient conditions, whatever their status. */
const RETRY_REASONS = new Set([
  'IdleTimeout',
  'TooManyRequests',
  'TooManyProviderTokenUpdates',
  'InternalServerError',
  'ServiceUnavailable',
  'Shutdown',
]);

export const EXPIRED_PROVIDER_TOKEN = 'ExpiredProviderToken';

export interface ApnsAnswer {
  status: number;
  /** The response's apns-id header, when present. */
  apnsId?: string;
  /** The raw response body: empty on success, `{"reason": ..., "timestamp"?: ...}` otherwise. */
  body: string;
}

export interface ErrorBody {
  reason: string;
  /** Unregistered only: when APNs learned the token was invalid (ms since the epoch). */
  timestamp?: number;
}

export function parseErrorBody(status: number, body: string): ErrorBody {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    parsed = undefined;
  }
  const fields = typeof parsed === 'object' && parsed !== null ? (parsed as Record<string, unknown>) : {};
  const reason = typeof fields.reason === 'string' && fields.reason !== '' ? fields.reason : `HTTP ${status}`;
  const timestamp = typeof fields.timestamp === 'number' && Number.isFinite(fields.timestamp) ? fields.timestamp : undefined;
  return timestamp === undefined ? { reason } : { reason, timestamp };
}

/** The outcome of one answer. ExpiredProviderToken comes out `misconfigured`: the client retries it before asking. */
export function classifyAnswer(answer: ApnsAnswer, sentApnsId: string): PushOutcome {
  const { status } = answer;
  if (status === 200) return { kind: 'accepted', apnsId: answer.apnsId ?? sentApnsId };
  const { reason, timestamp } = parseErrorBody(status, answer.body);
  if (status === 410 || INVALID_TOKEN_REASONS.has(reason)) {
    return timestamp === undefined ? { kind: 'invalid-token', status, reason } : { kind: 'invalid-token', status, reason, timestamp };
  }
  if (MISCONFIGURED_REASONS.has(reason)) return { kind: 'misconfigured', status, reason };
  if (RETRY_REASONS.has(reason) || status === 429 || status >= 500) return { kind: 'retry', status, reason };
  if (status >= 400) return { kind: 'permanent', status, reason };
  // 1xx, 3xx and other 2xx are not part of the protocol: treat as a fault on the way.
  return { kind: 'retry', status, reason };
}
