import type { Clock } from '../clock.ts';
import type { DatabaseHandle } from '../db/database.ts';
import { GroupCommit } from '../db/group-commit.ts';
import type { PushState } from '../db/schema.ts';
import { uuidv7 } from '../ids.ts';
import type { Logger } from '../logger.ts';
import type { Metrics } from '../metrics.ts';
import { toTapView } from '../modules/taps/view.ts';
import { tapPayload } from '../push/payload.ts';
import type { PushOutcome, PushSender } from '../push/sender.ts';
import {
  claim,
  deliveryKeyOf,
  findDue,
  nextDueAt,
  recordOutcome,
  reclaimAbandoned,
  settle,
  type OutcomeUpdate,
  type PushJob,
} from './deliveries-repo.ts';
import { pushVerdict, type DeliveryPolicy, type PushVerdict } from './policy.ts';

interface Deps {
  database: DatabaseHandle;
  clock: Clock;
  logger: Logger;
  metrics: Metrics;
  sender: PushSender;
  policy: DeliveryPolicy;
  batchSize?: number;
  /** Safety sweep for pushes scheduled elsewhere (another instance, a previous process). */
  sweepIntervalMs?: number;
  random?: () => number;
}

export type PushChannelState = 'disabled' | 'ok' | 'failing';

const BACKOFF_BASE_MS = 1_000;
const BACKOFF_MAX_MS = 60_000;
/** How soon to look again when a scan found due rows it could not take (another instance has them). */
const IDLE_RETRY_MS = 100;

/**
 * The push half of the delivery policy (docs/delivery.md). Hand-offs are rows
 * in tap_deliveries, written in the same transaction as the tap, so they
 * survive a crash and are picked up at start. Pushes for devices without a
 * socket arrive already claimed, through pushNow; the others fall due when an
 * ack window ends, or when a retry's backoff does, and a scan claims them with
 * a lease. Each goes through the PushSender once, and the outcome is recorded:
 * sent, failed, retry later (exponential backoff with jitter, bounded by the
 * tap's time-to-live), expired, or skipped. A device that acked first is never
 * pushed: an ack takes the row out of 'waiting'.
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
  /** Pushes handed over in memory, still going. */
  readonly #inFlight = new Set<Promise<void>>();
  #rescan = false;
  #stopped = true;

  constructor(deps: Deps) {
    this.#deps = deps;
    this.#leaseMs = deps.policy.leaseMs;
    this.#batchSize = deps.batchSize ?? 100;
    this.#recorder = new GroupCommit<OutcomeUpdate, void>(async (updates) => {
      await deps.database.db.transaction().execute(async (trx) => {
        for (const update of updates) await recordOutcome(trx, update);
      });
      return updates.map(() => undefined);
    });
  }

  state(): PushChannelState {
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

  /** Called after a tap commit: make sure we wake up when its ack window ends. */
  wakeAt(dueAt: number): void {
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

  /**
   * Pushes that were claimed in their tap's own transaction: no scan and no
   * second commit before the request goes out. If the process dies first,
   * the claim's lease runs out and a scan picks them up.
   */
  dispatchClaimed(jobs: PushJob[]): void {
    if (this.#stopped) return;
    const now = this.#deps.clock.now();
    for (const job of jobs) {
      const push = this.#send(job, now).catch((error: unknown) => this.#deps.logger.error({ err: error }, 'push failed'));
      this.#inFlight.add(push);
      void push.finally(() => this.#inFlight.delete(push));
    }
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
    while (this.#scanning || this.#inFlight.size > 0) {
      await this.#scanning;
      await Promise.all(this.#inFlight);
    }
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
      while (!this.#stopped) {
        this.#rescan = false;
        const count = await this.#processDue();
        if (this.#stopped) return;
        if (count === this.#batchSize || this.#rescan) continue;
        const next = await nextDueAt(this.#deps.database.db);
        if (next === undefined) return;
        // Something fell due while this scan ran: go round again, unless this
        // scan found nothing at all (then wait a beat rather than spin).
        if (next <= this.#deps.clock.now() && count > 0) continue;
        this.#timerDueAt = Infinity;
        this.wakeAt(Math.max(next, this.#deps.clock.now() + (count > 0 ? 0 : IDLE_RETRY_MS)));
        return;
      }
    } catch (error) {
      this.#deps.logger.error({ err: error }, 'push dispatch failed; retrying on the next sweep');
    }
  }

  /** One cycle: decide on every due push in one transaction, then send the ones claimed. */
  async #processDue(): Promise<number> {
    const now = this.#deps.clock.now();
    const { found, claimed } = await this.#deps.database.db.transaction().execute(async (trx) => {
      const due = await findDue(trx, now, this.#batchSize);
      const toSend: PushJob[] = [];
      const settlements = new Map<string, { state: PushState; reason: string; keys: PushJob[] }>();
      for (const job of due) {
        if (job.attempts === 0) this.#deps.metrics.pushHandoffs.inc({ trigger: job.trigger });
        const verdict = this.#verdict(job, now);
        if (verdict === 'send') {
          toSend.push(job);
          continue;
        }
        const group = settlements.get(`${verdict.state}/${verdict.reason}`) ?? { ...verdict, keys: [] };
        group.keys.push(job);
        settlements.set(`${verdict.state}/${verdict.reason}`, group);
      }
      for (const { state, reason, keys } of settlements.values()) {
        const settled = await settle(trx, keys, state, reason, now);
        this.#deps.metrics.pushResolutions.inc({ state, reason }, settled);
      }
      const claimedKeys = new Set((await claim(trx, toSend, now, now + this.#leaseMs)).map(deliveryKeyOf));
      return { found: due.length, claimed: toSend.filter((job) => claimedKeys.has(deliveryKeyOf(job))) };
    });
    await Promise.all(claimed.map((job) => this.#send(job, now)));
    return found;
  }

  #verdict(job: PushJob, now: number): PushVerdict {
    return pushVerdict({ ...job, tapCreatedAt: job.tap.created_at }, now, this.#deps.policy);
  }

  async #send(job: PushJob, now: number): Promise<void> {
    const expiresAt = job.tap.created_at + this.#deps.policy.tapTtlMs;
    const outcome = await this.#deps.sender.send({
      deviceToken: job.pushToken!,
      environment: job.pushEnvironment!,
      // watchOS devices are pushed under the watch app's topic (docs/push.md).
      platform: job.platform ?? 'ios',
      apnsId: uuidv7(now),
      expiresAt,
      collapseId: `tap-${job.tap.id}`,
      // The payload carries the tap as its recipient sees it: with the recipient's cursor.
      payload: tapPayload(toTapView(job.tap, job.tap.recipient_id), job.senderName),
    });
    this.#deps.metrics.pushAttempts.inc({ outcome: outcome.kind, reason: outcome.kind === 'accepted' ? 'none' : outcome.reason });
    const update = this.#outcome(job, outcome, expiresAt);
    await this.#recorder.submit(update);
    if (update.dueAt !== null) this.wakeAt(update.dueAt);
  }

  /** What an APNs answer means for the delivery (see docs/push.md). */
  #outcome(job: PushJob, outcome: PushOutcome, expiresAt: number): OutcomeUpdate {
    const now = this.#deps.clock.now();
    const base = { tapSeq: job.tapSeq, deviceId: job.deviceId, attempts: job.attempts + 1, dueAt: null };
    switch (outcome.kind) {
      case 'accepted':
        return { ...base, state: 'sent', reason: null, apnsId: outcome.apnsId, sentAt: now };
      case 'invalid-token':
        this.#deps.metrics.pushTokensInvalidated.inc({ reason: outcome.reason });
        this.#deps.logger.info({ deviceId: job.deviceId, reason: outcome.reason }, 'push token invalidated');
        return {
          ...base,
          state: 'failed',
          reason: outcome.reason,
          invalidateToken: { token: job.pushToken!, reason: outcome.reason, at: now, appleTimestamp: outcome.timestamp },
        };
      case 'permanent':
        this.#deps.logger.warn({ deviceId: job.deviceId, status: outcome.status, reason: outcome.reason }, 'push refused permanently');
        return { ...base, state: 'failed', reason: outcome.reason };
      case 'retry':
      case 'misconfigured': {
        const dueAt = now + this.#backoff(base.attempts);
        if (dueAt < expiresAt) return { ...base, state: 'waiting', reason: outcome.reason, dueAt };
        this.#deps.metrics.pushResolutions.inc({ state: 'expired', reason: outcome.reason });
        return { ...base, state: 'expired', reason: outcome.reason };
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
