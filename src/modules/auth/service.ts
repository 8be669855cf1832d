import type { Clock } from '../../clock.ts';
import type { Config } from '../../config.ts';
import type { DatabaseHandle } from '../../db/database.ts';
import type { Executor, Platform } from '../../db/schema.ts';
import { isForeignKeyViolation, isTransientConflict } from '../../db/errors.ts';
import { AppError, isAppError } from '../../errors.ts';
import { randomToken, sha256, uuidv7 } from '../../ids.ts';
import type { Logger } from '../../logger.ts';
import type { DeviceService } from '../devices/service.ts';
import { Hs256, TokenError, type TokenClaims } from './jwt.ts';

const VERIFIED_TOKENS_KEPT = 20_000;

export interface Session {
  userId: string;
  deviceId: string;
  accessToken: string;
  accessTokenExpiresAt: number;
  refreshToken: string;
  refreshTokenExpiresAt: number;
}

/** Who is calling: the device behind a verified access token. */
export interface Principal {
  userId: string;
  deviceId: string;
  /** When the access token expires (ms). */
  expiresAt: number;
}

interface Deps {
  database: DatabaseHandle;
  clock: Clock;
  config: Config['auth'] & { jwtSecret: string };
  devices: DeviceService;
  logger: Logger;
}

/**
 * Accounts are anonymous: a user is a person with devices, and every device
 * holds its own token family. Refresh tokens rotate on every use and are
 * stored hashed; replaying a rotated one signs the device out.
 */
export class AuthService {
  readonly #deps: Deps;
  readonly #jwt: Hs256;
  /** Access tokens already verified (oldest evicted first); revocation is checked separately, per request. */
  readonly #verified = new Map<string, TokenClaims>();

  constructor(deps: Deps) {
    this.#deps = deps;
    this.#jwt = new Hs256(deps.config.jwtSecret, deps.config.issuer, deps.config.audience);
  }

  async register(device: { platform: Platform; name?: string }): Promise<Session> {
    const { db } = this.#deps.database;
    const now = this.#deps.clock.now();
    const userId = uuidv7(now);
    return db.transaction().execute(async (trx) => {
      await trx.insertInto('users').values({ id: userId, display_name: null, created_at: now }).execute();
      const deviceId = await this.#deps.devices.create(trx, userId, device, now);
      return this.#issue(trx, userId, deviceId, now);
    });
  }

  /** A further device of the calling user (the phone hands these credentials to its watch). */
  async addDevice(userId: string, device: { platform: Platform; name?: string }): Promise<Session> {
    const now = this.#deps.clock.now();
    return this.#deps.database.db.transaction().execute(async (trx) => {
      const deviceId = await this.#deps.devices.create(trx, userId, device, now);
      return this.#issue(trx, userId, deviceId, now);
    });
  }

  async refresh(refreshToken: string): Promise<Session> {
    const now = this.#deps.clock.now();
    const claims = await this.#verify(refreshToken, 'refresh', now);
    const outcome = await this.#rotate(refreshToken, claims, now);
    if (outcome === 'unknown') throw new AppError('INVALID_TOKEN', 'Refresh token is not valid (expired, revoked or unknown)');
    if (outcome === 'replayed') {
      this.#deps.logger.warn({ deviceId: claims.did, userId: claims.sub }, 'refresh token replayed; device signed out');
      await this.#signOut(claims);
      throw new AppError('INVALID_TOKEN', 'Refresh token was already used; this device has been signed out for safety');
    }
    return outcome;
  }

  /** Spends a refresh token: a new pair, or why not. A device signed out meanwhile is 'unknown'. */
  async #rotate(refreshToken: string, claims: TokenClaims, now: number): Promise<Session | 'unknown' | 'replayed'> {
    const hash = sha256(refreshToken);
    try {
      return await this.#deps.database.db.transaction().execute(async (trx) => {
        const row = await trx.selectFrom('refresh_tokens').selectAll().where('token_hash', '=', hash).executeTakeFirst();
        if (!row || row.device_id !== claims.did || row.expires_at <= now) return 'unknown' as const;
        if (row.rotated_at === null) {
          const claimed = await trx
            .updateTable('refresh_tokens')
            .set({ rotated_at: now })
            .where('token_hash', '=', hash)
            .where('rotated_at', 'is', null)
            .executeTakeFirst();
          if (claimed.numUpdatedRows === 1n) return this.#issue(trx, claims.sub, row.device_id, now, hash);
        }
        // A rotated token. Within the grace window, and only while its successor
        // has not been used, it is a client that lost the response: supersede the
        // successor and issue a new pair. Anything else is a replay.
        const rotatedAt = row.rotated_at ?? now;
        const withinGrace = now - rotatedAt <= this.#deps.config.refreshReuseGraceSeconds * 1000;
        if (withinGrace && row.successor_hash !== null) {
          const superseded = await trx
            .updateTable('refresh_tokens')
            .set({ rotated_at: now })
            .where('token_hash', '=', row.successor_hash)
            .where('rotated_at', 'is', null)
            .executeTakeFirst();
          if (superseded.numUpdatedRows === 1n) return this.#issue(trx, claims.sub, row.device_id, now, hash);
        }
        return 'replayed' as const;
      });
    } catch (error) {
      // The device was removed between reading its token and writing the next
      // one (on PostgreSQL the removal may also deadlock with this write).
      if (isForeignKeyViolation(error) || isTransientConflict(error)) return 'unknown';
      throw error;
    }
  }

  /**
   * Signs out the device of a replayed refresh token. Concurrent replays of
   * one token all get here: the first removes the device, the others find it
   * gone; a removal chosen as a deadlock victim is run again.
   */
  async #signOut(claims: TokenClaims): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.#deps.devices.remove(claims.sub, claims.did, 'revoked');
      } catch (error) {
        if (isAppError(error) && error.code === 'NOT_FOUND') return;
        if (!isTransientConflict(error) || attempt === 3) throw error;
      }
    }
  }

  /**
   * Verifies an access token and that its device still exists (and is the
   * token's user's): for every request, the WebSocket upgrade and the
   * WebSocket's in-band renewal alike. A signed-out device's token is refused
   * here even while it has not expired.
   */
  async authenticate(accessToken: string): Promise<Principal> {
    const now = this.#deps.clock.now();
    const claims = await this.#verify(accessToken, 'access', now);
    const device = await this.#deps.devices.owner(claims.did);
    if (device !== claims.sub) throw new AppError('INVALID_TOKEN', 'This device has been signed out');
    return { userId: claims.sub, deviceId: claims.did, expiresAt: claims.exp * 1000 };
  }

  async #verify(token: string, type: 'access' | 'refresh', now: number): Promise<TokenClaims> {
    if (type === 'access') {
      // An app presents the same access token for its whole lifetime; its
      // signature and claims do not change, only whether it has expired.
      const known = this.#verified.get(token);
      if (known && known.exp * 1000 > now) return known;
    }
    try {
      const claims = await this.#jwt.verify(token, type, now);
      if (type === 'access') this.#remember(token, claims);
      return claims;
    } catch (error) {
      if (!(error instanceof TokenError)) throw error;
      const detail: Record<TokenError['reason'], string> = {
        malformed: 'Token is malformed',
        algorithm: 'Token algorithm is not accepted',
        signature: 'Token signature is invalid',
        'not-yet-valid': 'Token is not valid yet',
        claims: 'Token was not issued for this service',
        type: type === 'access' ? 'A refresh token cannot be used as an access token' : 'An access token cannot be used to refresh',
        expired: type === 'access' ? 'Access token expired; refresh it' : 'Refresh token expired; sign in again',
      };
      throw new AppError('INVALID_TOKEN', detail[error.reason]);
    }
  }

  #remember(token: string, claims: TokenClaims): void {
    if (this.#verified.size >= VERIFIED_TOKENS_KEPT) this.#verified.delete(this.#verified.keys().next().value as string);
    this.#verified.set(token, claims);
  }

  async #issue(db: Executor, userId: string, deviceId: string, now: number, predecessorHash?: string): Promise<Session> {
    const iat = Math.floor(now / 1000);
    const accessExp = iat + this.#deps.config.accessTokenTtlSeconds;
    const refreshExp = iat + this.#deps.config.refreshTokenTtlSeconds;
    const accessToken = await this.#jwt.sign({ sub: userId, did: deviceId, typ: 'access', iat, exp: accessExp });
    const refreshToken = await this.#jwt.sign({ sub: userId, did: deviceId, typ: 'refresh', iat, exp: refreshExp, jti: randomToken(24) });
    const tokenHash = sha256(refreshToken);
    await db
      .insertInto('refresh_tokens')
      .values({
        token_hash: tokenHash,
        device_id: deviceId,
        created_at: now,
        expires_at: refreshExp * 1000,
        rotated_at: null,
        successor_hash: null,
      })
      .execute();
    if (predecessorHash) {
      await db.updateTable('refresh_tokens').set({ successor_hash: tokenHash }).where('token_hash', '=', predecessorHash).execute();
    }
    return {
      userId,
      deviceId,
      accessToken,
      accessTokenExpiresAt: accessExp * 1000,
      refreshToken,
      refreshTokenExpiresAt: refreshExp * 1000,
    };
  }
}

export const toSessionView = (session: Session) => ({
  ...session,
  accessTokenExpiresAt: new Date(session.accessTokenExpiresAt).toISOString(),
  refreshTokenExpiresAt: new Date(session.refreshTokenExpiresAt).toISOString(),
});
