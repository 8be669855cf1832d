import type { Clock } from './clock.ts';

/**
 * The health of the instance as a small registry of named checks that
 * subsystems contribute when they exist: a subsystem that is not configured
 * simply has no check ("nil means off"). A Redis-backed bus adds its check
 * with one line:
 *
 *   ctx.health.add('redis', async () => { await redis.ping(); return { status: 'ok' }; }, { readiness: true });
 *
 * Checks with `readiness` decide /readyz (the instance can serve traffic);
 * the others only colour /health (push failing is degraded, not unready).
 * /livez consults none of them.
 */
export type CheckStatus = 'ok' | 'degraded' | 'failing';

export interface CheckOutcome {
  status: CheckStatus;
  /** For people: why a check is not ok. */
  detail?: string;
  /** Live WebSocket connections (the websocket check). */
  connections?: number;
}

export interface CheckResult extends CheckOutcome {
  latencyMs: number;
}

export type Check = () => Promise<CheckOutcome> | CheckOutcome;

export interface HealthReport {
  status: 'ok' | 'degraded' | 'failing' | 'draining';
  timestamp: string;
  /** Seconds since the instance started. */
  uptime: number;
  checks: Record<string, CheckResult>;
}

/** A check that has not answered by then counts as failing (a hung database must not hang the probe). */
export const CHECK_TIMEOUT_MS = 2000;

export class Health {
  readonly #clock: Clock;
  readonly #startedAt: number;
  readonly #checks = new Map<string, { run: Check; readiness: boolean }>();
  readonly #timeoutMs: number;
  #draining = false;

  constructor(clock: Clock, options: { timeoutMs?: number } = {}) {
    this.#clock = clock;
    this.#startedAt = clock.now();
    this.#timeoutMs = options.timeoutMs ?? CHECK_TIMEOUT_MS;
  }

  add(name: string, run: Check, options: { readiness: boolean }): void {
    if (this.#checks.has(name)) throw new Error(`health check ${name} is already registered`);
    this.#checks.set(name, { run, readiness: options.readiness });
  }

  get names(): string[] {
    return [...this.#checks.keys()];
  }

  /** From the first shutdown signal on: /readyz answers 503 so load balancers stop routing here. */
  startDraining(): void {
    this.#draining = true;
  }

  get draining(): boolean {
    return this.#draining;
  }

  uptimeSeconds(): number {
    return Math.max(0, Math.round((this.#clock.now() - this.#startedAt) / 100) / 10);
  }

  /** Runs the checks concurrently: every check (health) or only those that decide readiness. */
  async report(scope: 'health' | 'readiness'): Promise<HealthReport> {
    const selected = [...this.#checks].filter(([, check]) => scope === 'health' || check.readiness);
    const results = await Promise.all(selected.map(async ([name, check]) => [name, await this.#run(check.run)] as const));
    const checks = Object.fromEntries(results);
    const statuses = results.map(([name, result]) => ({ result, readiness: this.#checks.get(name)!.readiness }));
    let status: HealthReport['status'] = 'ok';
    if (this.#draining) status = 'draining';
    else if (statuses.some((s) => s.readiness && s.result.status === 'failing')) status = 'failing';
    else if (statuses.some((s) => s.result.status !== 'ok')) status = 'degraded';
    return { status, timestamp: new Date(this.#clock.now()).toISOString(), uptime: this.uptimeSeconds(), checks };
  }

  async #run(check: Check): Promise<CheckResult> {
    const started = performance.now();
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<CheckOutcome>((resolve) => {
      timer = setTimeout(() => resolve({ status: 'failing', detail: `no answer within ${this.#timeoutMs} ms` }), this.#timeoutMs);
    });
    let outcome: CheckOutcome;
    try {
      outcome = await Promise.race([Promise.resolve().then(check), timeout]);
    } catch (error) {
      outcome = { status: 'failing', detail: error instanceof Error ? error.message : String(error) };
    } finally {
      clearTimeout(timer);
    }
    return { ...outcome, latencyMs: Math.round((performance.now() - started) * 100) / 100 };
  }
}
