import type { Config } from '../../config.ts';
import { isAppError } from '../../errors.ts';
import type { Metrics } from '../../metrics.ts';
import { rateLimitedError, type RateLimiter } from '../../rate-limit.ts';

const HOUR_MS = 3_600_000;
const MINUTE_MS = 60_000;

interface Budget {
  name: 'network' | 'global';
  key: string;
  limit: number;
  windowMs: number;
}

interface Deps {
  limiter: RateLimiter;
  metrics: Metrics;
  config: Config['pairing'];
}

/**
 * Budgets of failed pairing guesses: a code typed that matches no code. One
 * per client network (an IPv4 address or an IPv6 /64), because accounts cost
 * an attacker nothing, and one for everyone, because addresses cost little.
 * docs/security.md has the model and the figures they give.
 *
 * A redemption is charged before its code is even looked at, so no number of
 * concurrent attempts can overshoot a budget; an attempt that turns out not
 * to be a failed guess (it paired, or the code exists but is used, expired or
 * one's own, or was not a code at all) is given back. So a correct code never
 * costs anything, and a typo costs one of PAIRING_FAILED_GUESSES_PER_NETWORK_PER_HOUR.
 */
export class PairingGuessBudget {
  readonly #deps: Deps;

  constructor(deps: Deps) {
    this.#deps = deps;
  }

  /** Runs `redeem` within the budgets of `network`; throws RATE_LIMITED when one is spent. */
  async around<T>(network: string, redeem: () => Promise<T>): Promise<T> {
    const charged = await this.#charge(network);
    try {
      const result = await redeem();
      await this.#refund(charged);
      return result;
    } catch (error) {
      if (!(isAppError(error) && error.code === 'PAIRING_CODE_NOT_FOUND')) await this.#refund(charged);
      throw error;
    }
  }

  #budgets(network: string): [Budget, Budget] {
    const { failedGuessesPerNetworkPerHour, failedGuessesPerMinute } = this.#deps.config;
    return [
      { name: 'network', key: `pairing-guess:net:${network}`, limit: failedGuessesPerNetworkPerHour, windowMs: HOUR_MS },
      { name: 'global', key: 'pairing-guess:all', limit: failedGuessesPerMinute, windowMs: MINUTE_MS },
    ];
  }

  async #charge(network: string): Promise<Budget[]> {
    const { limiter, metrics } = this.#deps;
    const [perNetwork, global] = this.#budgets(network);
    const own = await limiter.consume(perNetwork.key, perNetwork.limit, perNetwork.windowMs);
    if (!own.allowed) {
      metrics.pairingGuessesRefused.inc({ budget: 'network' });
      throw rateLimitedError('Too many codes that match nothing from this network; check the code and try again later', own.retryAfterMs);
    }
    const everyone = await limiter.consume(global.key, global.limit, global.windowMs);
    if (!everyone.allowed) {
      await limiter.refund(perNetwork.key, perNetwork.limit, perNetwork.windowMs);
      metrics.pairingGuessesRefused.inc({ budget: 'global' });
      throw rateLimitedError('Pairing is refusing codes for a moment because of unusual traffic; try again shortly', everyone.retryAfterMs);
    }
    return [perNetwork, global];
  }

  async #refund(budgets: readonly Budget[]): Promise<void> {
    for (const budget of budgets) await this.#deps.limiter.refund(budget.key, budget.limit, budget.windowMs);
  }
}
