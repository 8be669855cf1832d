import { createHmac, createSecretKey, timingSafeEqual, type KeyObject } from 'node:crypto';

/**
 * HS256 JSON Web Tokens, small and exact: the algorithm is pinned (a token
 * whose header names any other algorithm is rejected before its signature is
 * looked at), and `iss`, `aud`, `exp` and `typ` are always checked.
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
  jti?: string;
}

export type VerifyFailure = 'malformed' | 'algorithm' | 'signature' | 'expired' | 'claims' | 'type';

export class TokenError extends Error {
  readonly reason: VerifyFailure;
  constructor(reason: VerifyFailure) {
    super(`token ${reason}`);
    this.reason = reason;
  }
}

const HEADER = Buffer.from(JSON.stringify({ alg: 'HS256', typ: 'JWT' })).toString('base64url');

export class Hs256 {
  readonly #key: KeyObject;
  readonly #issuer: string;
  readonly #audience: string;

  constructor(secret: string, issuer: string, audience: string) {
    // A KeyObject made once: handing createHmac the raw bytes re-imports the key on every call.
    this.#key = createSecretKey(Buffer.from(secret, 'utf8'));
    this.#issuer = issuer;
    this.#audience = audience;
  }

  sign(claims: Omit<TokenClaims, 'iss' | 'aud'>): string {
    const payload = Buffer.from(JSON.stringify({ ...claims, iss: this.#issuer, aud: this.#audience })).toString('base64url');
    const input = `${HEADER}.${payload}`;
    return `${input}.${this.#mac(input).toString('base64url')}`;
  }

  /** Verifies the token and its claims at `nowMs`; throws TokenError. */
  verify(token: string, expectedType: TokenType, nowMs: number): TokenClaims {
    const parts = token.split('.');
    if (parts.length !== 3 || token.length > 4096) throw new TokenError('malformed');
    const [header, payload, signature] = parts as [string, string, string];
    if (header !== HEADER) {
      const parsed = parseSegment(header);
      throw new TokenError(parsed && parsed.alg !== 'HS256' ? 'algorithm' : 'malformed');
    }
    const given = Buffer.from(signature, 'base64url');
    const expected = this.#mac(`${header}.${payload}`);
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) throw new TokenError('signature');
    const claims = parseSegment(payload);
    if (!claims || !isClaims(claims)) throw new TokenError('claims');
    if (claims.iss !== this.#issuer || claims.aud !== this.#audience) throw new TokenError('claims');
    if (claims.typ !== expectedType) throw new TokenError('type');
    if (claims.exp * 1000 <= nowMs) throw new TokenError('expired');
    return claims;
  }

  #mac(input: string): Buffer {
    return createHmac('sha256', this.#key).update(input).digest();
  }
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
    Number.isInteger(value.exp)
  );
}
