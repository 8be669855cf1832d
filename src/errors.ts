/**
 * The error catalogue. Every failure a client can see has a stable `code`
 * from this table; docs/errors.md is generated from it.
 */
export const ERROR_CATALOG = {
  INVALID_INPUT: {
    status: 400,
    title: 'Invalid input',
    doc: 'The request (body, query, path or WebSocket message) is malformed, has a wrong type, a missing or unknown field, or an unknown enum value. `detail` names the field.',
  },
  UNAUTHORIZED: { status: 401, title: 'Authentication required', doc: 'No `Authorization: Bearer <access token>` header was sent.' },
  INVALID_TOKEN: {
    status: 401,
    title: 'Invalid token',
    doc: 'The token is malformed, tampered with, expired, of the wrong type (a refresh token used as an access token or the reverse), revoked, or its device no longer exists. Refresh the access token; if refreshing fails with this code, the device is signed out.',
  },
  NOT_FOUND: {
    status: 404,
    title: 'Not found',
    doc: "No such route or object, or the object belongs to someone else (another user's objects are never revealed).",
  },
  NOT_PAIRED: { status: 403, title: 'Not paired', doc: 'The recipient of a tap is not a partner of the sender.' },
  PAIRING_CODE_NOT_FOUND: { status: 404, title: 'Pairing code not found', doc: 'No pending code matches (mistyped, cancelled or purged).' },
  PAIRING_CODE_EXPIRED: {
    status: 410,
    title: 'Pairing code expired',
    doc: 'The code existed but its lifetime (10 minutes by default) has passed. Ask for a new code.',
  },
  PAIRING_CODE_USED: {
    status: 409,
    title: 'Pairing code already used',
    doc: 'The code was already redeemed (codes are single-use; when two people race for one code, one wins and the other gets this).',
  },
  CANNOT_PAIR_WITH_SELF: {
    status: 422,
    title: 'Cannot pair with yourself',
    doc: 'The code was created by the same user who is redeeming it.',
  },
  ALREADY_PAIRED: { status: 409, title: 'Already paired', doc: 'The two users are already partners.' },
  PAIRING_LIMIT_REACHED: {
    status: 409,
    title: 'Pairing limit reached',
    doc: 'One of the two users already has the maximum number of partners (5 by default).',
  },
  IDEMPOTENCY_CONFLICT: {
    status: 422,
    title: 'Tap id already used',
    doc: 'A tap with this client-chosen `id` exists with a different body (or belongs to someone else). Reuse an id only to retry the very same tap.',
  },
  RATE_LIMITED: {
    status: 429,
    title: 'Too many requests',
    doc: 'A rate limit was hit. The `Retry-After` header (seconds) says when to try again.',
  },
  PAYLOAD_TOO_LARGE: { status: 413, title: 'Payload too large', doc: 'The request body is larger than the limit (4 KiB).' },
  UNSUPPORTED_MEDIA_TYPE: { status: 415, title: 'Unsupported media type', doc: 'Bodies must be `application/json`.' },
  SERVICE_UNAVAILABLE: {
    status: 503,
    title: 'Service unavailable',
    doc: 'A dependency (the database) is unreachable or the instance is shutting down. Retry with backoff.',
  },
  INTERNAL_ERROR: {
    status: 500,
    title: 'Internal error',
    doc: 'An unexpected failure. It is logged with the `requestId`; retrying is safe for idempotent requests (taps with an `id`).',
  },
} as const satisfies Record<string, { status: number; title: string; doc: string }>;

export type ErrorCode = keyof typeof ERROR_CATALOG;

/** The one error type the service throws on purpose; the error handler turns it into a problem document. */
export class AppError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly headers: Record<string, string>;

  constructor(code: ErrorCode, detail?: string, options?: { headers?: Record<string, string>; cause?: unknown }) {
    super(detail ?? ERROR_CATALOG[code].title, { cause: options?.cause });
    this.name = 'AppError';
    this.code = code;
    this.status = ERROR_CATALOG[code].status;
    this.headers = options?.headers ?? {};
  }

  get title(): string {
    return ERROR_CATALOG[this.code].title;
  }
}

export function isAppError(error: unknown): error is AppError {
  return error instanceof AppError;
}

/** Someone else's object is indistinguishable from no object. */
export const notFound = (what: string): AppError => new AppError('NOT_FOUND', `${what} not found`);
