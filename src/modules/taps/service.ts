import { toIsoOrNull, type Clock } from '../../clock.ts';
import type { DatabaseHandle } from '../../db/database.ts';
import type { Executor } from '../../db/schema.ts';
import { AppError, notFound } from '../../errors.ts';
import { uuidv7 } from '../../ids.ts';
import type { Metrics } from '../../metrics.ts';
import { enforceLimit, type RateLimiter } from '../../rate-limit.ts';
import type { EventBus } from '../../realtime/events.ts';
import type { Handoff } from '../../push/repo.ts';
import type { Presence } from '../../realtime/presence.ts';
import { findDeliveries, findTap, findTaps } from './repo.ts';
import type { ListTapsQuery, SendTapBody, TapDetail, TapPage, TapView } from './schemas.ts';
import { toCursor, toTapView } from './view.ts';
import type { WriteQueue } from './write-queue.ts';

export interface Sender {
  userId: string;
  deviceId: string;
}

/** The push side of the delivery policy (see push/dispatcher.ts). */
export interface PushHandoff {
  /** Push these now: they were claimed in the tap's own transaction. */
  pushNow(handoffs: Handoff[]): void;
  /** Wake up when an ack window ends. */
  schedule(dueAt: number): void;
}

interface Deps {
  database: DatabaseHandle;
  writes: WriteQueue;
  clock: Clock;
  bus: EventBus;
  metrics: Metrics;
  rateLimiter: RateLimiter;
  presence: Presence;
  push: PushHandoff;
  tapsPerMinute: number;
}

export const SYNC_PAGE_SIZE = 200;

/**
 * Taps: sending (group-committed, so concurrent senders share one fsync),
 * history, and the replay a reconnecting device asks for.
 */
export class TapService {
  readonly #deps: Deps;
  constructor(deps: Deps) {
    this.#deps = deps;
  }

  /**
   * Stores the tap (committed before this resolves), then announces it to
   * both users' live devices. `created` is false for an idempotent retry.
   */
  async send(sender: Sender, input: SendTapBody, via: 'http' | 'websocket'): Promise<{ tap: TapView; created: boolean }> {
    await enforceLimit(this.#deps.rateLimiter, this.#deps.metrics, {
      name: 'taps',
      key: sender.userId,
      max: this.#deps.tapsPerMinute,
      windowMs: 60_000,
      message: 'Too many taps; slow down a little',
    });
    if (input.to === sender.userId) throw new AppError('NOT_PAIRED', 'You cannot send a tap to yourself');
    const now = this.#deps.clock.now();
    const written = await this.#deps.writes.writeTap({
      id: input.id ?? uuidv7(now),
      onlineDeviceIds: this.#deps.presence.onlineDevices(input.to),
      clientChosenId: input.id !== undefined,
      senderId: sender.userId,
      senderDeviceId: sender.deviceId,
      recipientId: input.to,
      intensity: input.intensity,
      pattern: input.pattern,
      createdAt: now,
    });
    const tap = toTapView(written.row);
    if (written.created) {
      this.#deps.metrics.tapsCreated.inc({ via });
      const event = { type: 'tap.created' as const, tap, originDeviceId: sender.deviceId };
      this.#deps.bus.publish(tap.to, event);
      this.#deps.bus.publish(tap.from, event);
      if (written.pushNow.length > 0) this.#deps.push.pushNow(written.pushNow);
      if (written.pushDueAt !== undefined) this.#deps.push.schedule(written.pushDueAt);
    }
    return { tap, created: written.created };
  }

  async list(userId: string, query: ListTapsQuery): Promise<TapPage> {
    if (query.before !== undefined && query.after !== undefined) {
      throw new AppError('INVALID_INPUT', 'Use either before (paging back) or after (catching up), not both');
    }
    const after = query.after === undefined ? undefined : Number(query.after);
    const rows = await findTaps(this.#deps.database.db, {
      userId,
      withUser: query.with,
      before: query.before === undefined ? undefined : Number(query.before),
      after,
      limit: query.limit + 1,
    });
    const hasMore = rows.length > query.limit;
    const page = rows.slice(0, query.limit);
    const last = page.at(-1);
    let nextCursor: string | null;
    if (after !== undefined) nextCursor = last ? toCursor(last.seq) : toCursor(after);
    else nextCursor = hasMore && last ? toCursor(last.seq) : null;
    return { taps: page.map(toTapView), nextCursor, hasMore };
  }

  /** Taps newer than `after`, oldest first: what a reconnecting device missed. */
  async since(userId: string, after: number, limit = SYNC_PAGE_SIZE): Promise<{ taps: TapView[]; hasMore: boolean }> {
    const rows = await findTaps(this.#deps.database.db, { userId, after, limit: limit + 1 });
    return { taps: rows.slice(0, limit).map(toTapView), hasMore: rows.length > limit };
  }

  /** One tap with its per-device delivery record; only its sender and recipient may see it. */
  async detail(userId: string, tapId: string): Promise<TapDetail> {
    const detail = await readTapDetail(this.#deps.database.db, tapId);
    if (!detail || (detail.tap.from !== userId && detail.tap.to !== userId)) throw notFound('Tap');
    return detail;
  }
}

/**
 * The read behind `detail`, without the per-user authorization: for support
 * tools that run with the database's own rights (`./navi inspect-tap`).
 */
export async function readTapDetail(db: Executor, tapId: string): Promise<TapDetail | undefined> {
  const row = await findTap(db, tapId);
  if (!row) return undefined;
  const deliveries = await findDeliveries(db, row.seq);
  return {
    tap: toTapView(row),
    deliveries: deliveries.map((d) => ({
      deviceId: d.device_id,
      platform: d.platform,
      status: d.status,
      channel: d.channel,
      deliveredAt: toIsoOrNull(d.delivered_at),
      seenAt: toIsoOrNull(d.seen_at),
      push: {
        state: d.push_state,
        trigger: d.push_trigger,
        attempts: d.push_attempts,
        lastReason: d.push_last_reason,
        apnsId: d.push_apns_id,
        sentAt: toIsoOrNull(d.push_sent_at),
      },
    })),
  };
}
