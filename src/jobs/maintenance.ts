import type { Clock } from '../clock.ts';
import type { DatabaseHandle } from '../db/database.ts';
import type { Logger } from '../logger.ts';
import type { PairingService } from '../modules/pairing/service.ts';

interface Deps {
  database: DatabaseHandle;
  clock: Clock;
  pairing: PairingService;
  logger: Logger;
  intervalMs: number;
}

/** The periodic purge: pairing codes past their retention and refresh tokens past their expiry. */
export class Maintenance {
  readonly #deps: Deps;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;

  constructor(deps: Deps) {
    this.#deps = deps;
  }

  start(): void {
    this.#timer = setInterval(() => {
      this.#running ??= this.runOnce()
        .then(() => undefined)
        .catch((error: unknown) => this.#deps.logger.error({ err: error }, 'maintenance failed'))
        .finally(() => {
          this.#running = undefined;
        });
    }, this.#deps.intervalMs);
    this.#timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    await this.#running;
  }

  async runOnce(): Promise<{ codes: number; refreshTokens: number }> {
    const codes = await this.#deps.pairing.purgeExpiredCodes();
    const result = await this.#deps.database.db
      .deleteFrom('refresh_tokens')
      .where('expires_at', '<', this.#deps.clock.now())
      .executeTakeFirst();
    const refreshTokens = Number(result.numDeletedRows);
    if (codes + refreshTokens > 0) this.#deps.logger.info({ codes, refreshTokens }, 'purged expired records');
    return { codes, refreshTokens };
  }
}
