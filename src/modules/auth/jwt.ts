import { SignJWT, errors, jwtVerify } from 'jose';
import { webcrypto } from 'node:crypto';

/**
 * HS256 JSON Web Tokens through `jose`. The algorithm is pinned (a token whose
 * header names any other is refused before its signature is looked at), and
 * every claim is checked: `typ` (header and claim), `iss`, `aud`, `exp`,
 * `nbf` when present, an `iat` in the future (beyond a small allowance for
 * clocks of several instances) and a lifetime longer than this service ever
 * issues. Each segment must be canonical base64url, so one token has exactly
 * one spelling (no second signature string that verifies too).
 */
export type TokenType = 'access' | 'refresh';

export interface TokenClaims {
  /** User id. */
  sub: string;
  /** Device id. */
  did: string;
  typ: TokenType;
  iss: string;
  aud: string;
  iat: number;
  exp: number;
  nbf?: number;
  jti?: string;
}

export type VerifyFailure = 'malformed' | 'algorithm' | 'signature' | 'expired' | 'not-yet-valid' | 'claims' | 'type';

export class TokenError extends Error {
  readonly reason: VerifyFailure;
  constructor(reason: VerifyFailure) {
    super(`token ${reason}`);
    this.reason = reason;
  }
}

/** How far in the future an `iat` may lie: clocks of instances disagree by a little, never by this much. */
export const IAT_LEEWAY_SECONDS = 60;
/**
 * The longest lifetime of each kind of token this service can issue (the
 * maxima of ACCESS_TOKEN_TTL_SECONDS and REFRESH_TOKEN_TTL_SECONDS), so
 * changing the configured lifetime never signs anyone out, and a token that
 * claims a century is refused.
 */
export const MAX_LIFETIME_SECONDS: Record<TokenType, number> = { access: 86_400, refresh: 400 * 86_400 };
const MAX_TOKEN_LENGTH = 4096;
const CANONICAL_SEGMENT = /^[A-Za-z0-9_-]+$/;

export class Hs256 {
  readonly #secret: Uint8Array;
  readonly #issuer: string;
  readonly #audience: string;
  /** Imported once: importing the raw secret on every call would cost more than the HMAC. */
  #key: Promise<webcrypto.CryptoKey> | undefined;

  constructor(secret: string, issuer: string, audience: string) {
    this.#secret = new TextEncoder().encode(secret);
    this.#issuer = issuer;
    this.#audience = audience;
  }

  async sign(claims: Omit<TokenClaims, 'iss' | 'aud'>): Promise<string> {
    return new SignJWT({ ...claims, iss: this.#issuer, aud: this.#audience })
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .sign(await this.#cryptoKey());
  }

  /** Verifies the token and its claims at `nowMs`; throws TokenError. */
  async verify(token: string, expectedType: TokenType, nowMs: number): Promise<TokenClaims> {
    const parts = token.split('.');
    if (token.length > MAX_TOKEN_LENGTH || parts.length !== 3 || !parts.every(isCanonicalBase64url)) throw new TokenError('malformed');
    const header = parseSegment(parts[0]!);
    if (!header) throw new TokenError('malformed');
    if (header.alg !== 'HS256') throw new TokenError('algorithm');
    let payload: Record<string, unknown>;
    try {
      ({ payload } = await jwtVerify(token, await this.#cryptoKey(), {
        algorithms: ['HS256'],
        typ: 'JWT',
        issuer: this.#issuer,
        audience: this.#audience,
        requiredClaims: ['iat', 'exp', 'sub'],
        currentDate: new Date(nowMs),
      }));
    } catch (error) {
      throw new TokenError(failureOf(error));
    }
    if (!isClaims(payload)) throw new TokenError('claims');
    if (payload.typ !== expectedType) throw new TokenError('type');
    const now = nowMs / 1000;
    if (payload.iat > now + IAT_LEEWAY_SECONDS) throw new TokenError('not-yet-valid');
    if (payload.exp - payload.iat > MAX_LIFETIME_SECONDS[expectedType]) throw new TokenError('claims');
    return payload;
  }

  #cryptoKey(): Promise<webcrypto.CryptoKey> {
    this.#key ??= webcrypto.subtle.importKey('raw', this.#secret as Uint8Array<ArrayBuffer>, { name: 'HMAC', hash: 'SHA-256' }, false, [
      'sign',
      'verify',
    ]);
    return this.#key;
  }
}

function failureOf(error: unknown): VerifyFailure {
  if (error instanceof errors.JWTExpired) return 'expired';
  if (error instanceof errors.JWSSignatureVerificationFailed) return 'signature';
  if (error instanceof errors.JOSEAlgNotAllowed) return 'algorithm';
  if (error instanceof errors.JWTClaimValidationFailed) return error.claim === 'nbf' ? 'not-yet-valid' : 'claims';
  if (error instanceof errors.JOSEError) return 'malformed';
  throw error;
}

/** base64url without padding whose last character carries no stray bits: decoding and encoding again gives it back. */
function isCanonicalBase64url(segment: string): boolean {
  return CANONICAL_SEGMENT.test(segment) && Buffer.from(segment, 'base64url').toString('base64url') === segment;
}

function parseSegment(segment: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(Buffer.from(segment, 'base64url').toString('utf8'));
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

function isClaims(value: Record<string, unknown>): value is TokenClaims & Record<string, unknown> {
  return (
    typeof value.sub === 'string' &&
    typeof value.did === 'string' &&
    (value.typ === 'access' || value.typ === 'refresh') &&
    typeof value.iss === 'string' &&
    typeof value.aud === 'string' &&
    Number.isInteger(value.iat) &&
    Number.isInteger(value.exp) &&
    (value.nbf === undefined || typeof value.nbf === 'number')
  );
}
