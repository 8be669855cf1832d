import type { Clock } from '../clock.ts';
import type { DatabaseHandle } from '../db/database.ts';
import { GroupCommit } from '../db/group-commit.ts';
import type { PushState } from '../db/schema.ts';
import { uuidv7 } from '../ids.ts';
import type { Logger } from '../logger.ts';
import type { Metrics } from '../metrics.ts';
import { toTapView } from '../modules/taps/view.ts';
import { tapPayload } from './payload.ts';
import { claimDue, loadHandoffs, nextDueAt, recordOutcome, reclaimAbandoned, type Handoff, type OutcomeUpdate } from './repo.ts';
import type { PushOutcome, PushSender } from './sender.ts';

interface Deps {
  database: DatabaseHandle;
  clock: Clock;
  logger: Logger;
  metrics: Metrics;
  /** Absent when APNs is not configured: hand-offs are recorded as skipped. */
  sender?: PushSender;
  tapTtlMs: number;
  /** How long a claimed hand-off is ours before another instance may take it over. */
  leaseMs?: number;
  batchSize?: number;
  /** Safety sweep for hand-offs scheduled elsewhere (another instance, a previous process). */
  sweepIntervalMs?: number;
  random?: () => number;
}

export type PushChannelState = 'disabled' | 'ok' | 'failing';

const BACKOFF_BASE_MS = 1_000;
const BACKOFF_MAX_MS = 60_000;

/**
 * The push half of the delivery policy. Hand-offs are rows in tap_deliveries
 * (push_state 'waiting', due at push_due_at), written in the same transaction
 * as the tap, so they survive a crash and are picked up at start. The
 * dispatcher claims due rows with a lease, sends each through the PushSender,
 * and records the outcome: sent, failed, retry later (exponential backoff with
 * jitter, bounded by the tap's time-to-live), expired, or skipped. A device
 * that acked first is never pushed: an ack takes the row out of 'waiting'.
 */
export class PushDispatcher {
  readonly #deps: Deps;
  readonly #leaseMs: number;
  readonly #batchSize: number;
  readonly #recorder: GroupCommit<OutcomeUpdate, void>;
  #timer: NodeJS.Timeout | undefined;
  #timerDueAt = Infinity;
  #sweep: NodeJS.Timeout | undefined;
  #scanning: Promise<void> | undefined;
  #rescan = false;
  #stopped = true;

  constructor(deps: Deps) {
    this.#deps = deps;
    this.#leaseMs = deps.leaseMs ?? 60_000;
    this.#batchSize = deps.batchSize ?? 100;
    this.#recorder = new GroupCommit<OutcomeUpdate, void>(async (updates) => {
      await deps.database.db.transaction().execute(async (trx) => {
        for (const update of updates) await recordOutcome(trx, update);
      });
      return updates.map(() => undefined);
    });
  }

  state(): PushChannelState {
    if (!this.#deps.sender) return 'disabled';
    return this.#deps.sender.health().state;
  }

  async start(): Promise<void> {
    this.#stopped = false;
    // With SQLite this process owns the database, so a claim still held is one
    // the previous process died with: take it back now rather than after the lease.
    if (this.#deps.database.dialect === 'sqlite') await reclaimAbandoned(this.#deps.database.db, this.#deps.clock.now());
    this.#sweep = setInterval(() => this.kick(), this.#deps.sweepIntervalMs ?? 10_000);
    this.#sweep.unref();
    this.kick();
  }

  /** Called after a tap commit: make sure we wake up when its hand-off falls due. */
  schedule(dueAt: number): void {
    if (this.#stopped) return;
    const delay = dueAt - this.#deps.clock.now();
    if (delay <= 0) return this.kick();
    if (dueAt >= this.#timerDueAt) return;
    clearTimeout(this.#timer);
    this.#timerDueAt = dueAt;
    this.#timer = setTimeout(() => {
      this.#timerDueAt = Infinity;
      this.kick();
    }, delay);
    this.#timer.unref();
  }

  /** Scan for due hand-offs now (coalesced with a scan in progress). */
  kick(): void {
    if (this.#stopped) return;
    if (this.#scanning) {
      this.#rescan = true;
      return;
    }
    this.#scanning = this.#scanLoop().finally(() => {
      this.#scanning = undefined;
    });
  }

  /** Resolves when no scan is running (tests, shutdown). */
  async idle(): Promise<void> {
    while (this.#scanning) await this.#scanning;
    await this.#recorder.drain();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    clearInterval(this.#sweep);
    this.#timerDueAt = Infinity;
    await this.idle();
  }

  async #scanLoop(): Promise<void> {
    try {
      do {
        this.#rescan = false;
        const count = await this.#processDue();
        if (count === this.#batchSize) this.#rescan = true;
      } while (this.#rescan && !this.#stopped);
      if (!this.#stopped) {
        const next = await nextDueAt(this.#deps.database.db);
        if (next !== undefined) this.schedule(next);
      }
    } catch (error) {
      this.#deps.logger.error({ err: error }, 'push dispatch failed; retrying on the next sweep');
    }
  }

  async #processDue(): Promise<number> {
    const now = this.#deps.clock.now();
    const claimed = await claimDue(this.#deps.database, now, this.#leaseMs, this.#batchSize);
    if (claimed.length === 0) return 0;
    const handoffs = await loadHandoffs(this.#deps.database.db, claimed);
    await Promise.all(handoffs.map((handoff) => this.#deliver(handoff)));
    return claimed.length;
  }

  async #deliver(handoff: Handoff): Promise<void> {
    const now = this.#deps.clock.now();
    const key = { tapId: handoff.tap.id, deviceId: handoff.deviceId };
    if (handoff.attempts === 0) this.#deps.metrics.pushHandoffs.inc({ trigger: handoff.trigger });
    const finish = (state: PushState, reason: string | null, extra: Partial<OutcomeUpdate> = {}) =>
      this.#recorder.submit({ ...key, state, reason, dueAt: null, attempts: handoff.attempts, ...extra });
    const settleWithoutSending = (state: PushState, reason: string) => {
      this.#deps.metrics.pushResolutions.inc({ state, reason });
      return finish(state, reason);
    };

    if (handoff.status !== 'pending') return settleWithoutSending('not_needed', 'Acked');
    const expiresAt = handoff.tap.created_at + this.#deps.tapTtlMs;
    if (now >= expiresAt) return settleWithoutSending('expired', handoff.lastReason ?? 'TapExpired');
    const sender = this.#deps.sender;
    if (!sender) return settleWithoutSending('skipped', 'PushDisabled');
    if (handoff.pushToken === null || handoff.pushEnvironment === null) return settleWithoutSending('skipped', 'NoPushToken');
    if (handoff.tokenInvalidAt !== null) return settleWithoutSending('skipped', 'TokenInvalid');

    const apnsId = uuidv7(now);
    const outcome = await sender.send({
      deviceToken: handoff.pushToken,
      environment: handoff.pushEnvironment,
      apnsId,
      expiresAt,
      collapseId: `tap-${handoff.tap.id}`.slice(0, 64),
      payload: tapPayload(toTapView(handoff.tap), handoff.senderName),
    });
    this.#deps.metrics.pushAttempts.inc({ outcome: outcome.kind, reason: outcome.kind === 'accepted' ? 'none' : outcome.reason });
    const attempts = handoff.attempts + 1;
    return this.#record(handoff, outcome, attempts, expiresAt, finish);
  }

  #record(
    handoff: Handoff,
    outcome: PushOutcome,
    attempts: number,
    expiresAt: number,
    finish: (state: PushState, reason: string | null, extra?: Partial<OutcomeUpdate>) => Promise<void>,
  ): Promise<void> {
    const now = this.#deps.clock.now();
    switch (outcome.kind) {
      case 'accepted':
        return finish('sent', null, { attempts, apnsId: outcome.apnsId, sentAt: now });
      case 'invalid-token':
        this.#deps.metrics.pushTokensInvalidated.inc({ reason: outcome.reason });
        this.#deps.logger.info({ deviceId: handoff.deviceId, reason: outcome.reason }, 'push token invalidated');
        return finish('failed', outcome.reason, {
          attempts,
          invalidateToken: { token: handoff.pushToken!, reason: outcome.reason, at: now, appleTimestamp: outcome.timestamp },
        });
      case 'permanent':
        this.#deps.logger.warn({ deviceId: handoff.deviceId, status: outcome.status, reason: outcome.reason }, 'push refused permanently');
        return finish('failed', outcome.reason, { attempts });
      case 'retry':
      case 'misconfigured': {
        const delay = this.#backoff(attempts);
        if (now + delay >= expiresAt) {
          this.#deps.metrics.pushResolutions.inc({ state: 'expired', reason: outcome.reason });
          return finish('expired', outcome.reason, { attempts });
        }
        const dueAt = now + delay;
        return this.#recorder
          .submit({ tapId: handoff.tap.id, deviceId: handoff.deviceId, state: 'waiting', reason: outcome.reason, dueAt, attempts })
          .then(() => this.schedule(dueAt));
      }
    }
  }

  /** Exponential backoff with jitter: 1 s, 2 s, 4 s ... capped at a minute, each drawn from [half, full]. */
  #backoff(attempts: number): number {
    const ceiling = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** (attempts - 1));
    const random = this.#deps.random ?? Math.random;
    return Math.round(ceiling / 2 + random() * (ceiling / 2));
  }
}
