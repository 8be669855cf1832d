import { createPrivateKey, sign, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Clock } from '../../clock.ts';
import type { ApnsConfig } from '../../config.ts';

/** Apple rejects a token older than an hour; renewing at 50 minutes leaves room for clock skew. */
export const TOKEN_REFRESH_AFTER_MS = 50 * 60_000;
/** Apple answers TooManyProviderTokenUpdates when a token is replaced more often than this. */
export const TOKEN_MIN_LIFETIME_MS = 20 * 60_000;

export interface ProviderTokenOptions {
  /** The .p8 signing key: PKCS#8 PEM text, or a KeyObject. */
  key: string | KeyObject;
  keyId: string;
  teamId: string;
  clock: Clock;
}

/**
 * The ES256 JWT that authenticates every APNs request. One token is reused
 * for all requests until it is 50 minutes old, because Apple both rejects
 * tokens older than an hour and throttles providers that renew them more
 * than once every 20 minutes.
 */
export class ProviderToken {
  readonly #key: KeyObject;
  readonly #header: string;
  readonly #teamId: string;
  readonly #clock: Clock;
  #token: string | undefined;
  #issuedAt = 0;

  constructor(options: ProviderTokenOptions) {
    this.#key = typeof options.key === 'string' ? signingKeyOrThrow(options.key) : options.key;
    const problem = curveProblem(this.#key);
    if (problem !== undefined) throw new Error(`The APNs key ${problem}`);
    this.#header = base64url(JSON.stringify({ alg: 'ES256', kid: options.keyId }));
    this.#teamId = options.teamId;
    this.#clock = options.clock;
  }

  /** The token to send now: the cached one, or a new one when the cached one is 50 minutes old. */
  current(): string {
    if (this.#token === undefined || this.#age() >= TOKEN_REFRESH_AFTER_MS) return this.#issue();
    return this.#token;
  }

  /**
   * APNs called `rejected` expired. Returns the token to retry with, or
   * undefined when retrying cannot help: the current token is younger than
   * 20 minutes, so renewing it would earn TooManyProviderTokenUpdates and
   * the real cause is elsewhere (most often a wrong system clock).
   */
  renewAfterExpired(rejected: string): string | undefined {
    const current = this.current();
    // Another request already renewed it while this one was in flight.
    if (rejected !== current) return current;
    if (this.#age() < TOKEN_MIN_LIFETIME_MS) return undefined;
    return this.#issue();
  }

  /** Milliseconds since the cached token was issued (0 before the first one). */
  age(): number {
    return this.#token === undefined ? 0 : this.#age();
  }

  #age(): number {
    return this.#clock.now() - this.#issuedAt;
  }

  #issue(): string {
    this.#issuedAt = this.#clock.now();
    const claims = base64url(JSON.stringify({ iss: this.#teamId, iat: Math.floor(this.#issuedAt / 1000) }));
    const signingInput = `${this.#header}.${claims}`;
    const signature = sign('sha256', Buffer.from(signingInput), { key: this.#key, dsaEncoding: 'ieee-p1363' });
    this.#token = `${signingInput}.${signature.toString('base64url')}`;
    return this.#token;
  }
}

/** Reads the key named by the configuration (which config.ts has already checked, see signingKeyProblem). */
export function loadSigningKey(key: ApnsConfig['key']): KeyObject {
  const pem = 'pem' in key ? key.pem : readFileSync(key.path, 'utf8');
  return signingKeyOrThrow(pem);
}

/**
 * Why `pem` cannot sign provider tokens, as the end of a sentence that
 * starts with what named it ("APNS_KEY is not a PEM private key..."), or
 * undefined when it can. Never quotes the key.
 */
export function signingKeyProblem(pem: string): string | undefined {
  const key = parsePem(pem);
  return key === undefined ? NOT_PEM : curveProblem(key);
}

const NOT_PEM = 'is not a PEM private key (expected the .p8 file from Apple)';

function signingKeyOrThrow(pem: string): KeyObject {
  const key = parsePem(pem);
  if (key === undefined) throw new Error(`The APNs key ${NOT_PEM}`);
  return key;
}

function parsePem(pem: string): KeyObject | undefined {
  try {
    // Keys pasted into an environment variable often arrive with literal "\n".
    return createPrivateKey({ key: pem.replace(/\\n/g, '\n'), format: 'pem' });
  } catch {
    // The parser's message may quote the key; never let it reach a log.
    return undefined;
  }
}

function curveProblem(key: KeyObject): string | undefined {
  if (key.type !== 'private' || key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
    return 'is not an EC P-256 private key (expected the .p8 file from Apple)';
  }
  return undefined;
}

const base64url = (text: string): string => Buffer.from(text).toString('base64url');
