import { toIsoOrNull, type Clock } from '../../clock.ts';
import type { DatabaseHandle } from '../../db/database.ts';
import { deliveriesOfTap } from '../../delivery/deliveries-repo.ts';
import { readTapEntries } from '../../delivery/log-repo.ts';
import type { DeliveryService, Principal } from '../../delivery/service.ts';
import { findTap } from '../../delivery/taps-repo.ts';
import type { Executor } from '../../db/schema.ts';
import { AppError, notFound } from '../../errors.ts';
import { uuidv7 } from '../../ids.ts';
import type { Metrics } from '../../metrics.ts';
import { enforceLimit, type RateLimiter } from '../../rate-limit.ts';
import type { ListTapsQuery, SendTapBody, TapDetail, TapPage, TapView } from './schemas.ts';
import { toTapView } from './view.ts';

interface Deps {
  database: DatabaseHandle;
  delivery: DeliveryService;
  clock: Clock;
  metrics: Metrics;
  rateLimiter: RateLimiter;
  tapsPerMinute: number;
}

/** Taps: sending (through the delivery log), history, and one tap's delivery record. */
export class TapService {
  readonly #deps: Deps;
  constructor(deps: Deps) {
    this.#deps = deps;
  }

  /** Stores the tap (committed before this resolves) and delivers it. `created` is false for an idempotent retry. */
  async send(caller: Principal, input: SendTapBody, via: 'http' | 'websocket'): Promise<{ tap: TapView; created: boolean }> {
    await enforceLimit(this.#deps.rateLimiter, this.#deps.metrics, {
      name: 'taps',
      key: caller.userId,
      max: this.#deps.tapsPerMinute,
      windowMs: 60_000,
      message: 'Too many taps; slow down a little',
    });
    if (input.to === caller.userId) throw new AppError('NOT_PAIRED', 'You cannot send a tap to yourself');
    const now = this.#deps.clock.now();
    const { row, created } = await this.#deps.delivery.sendTap({
      id: input.id ?? uuidv7(now),
      clientChosenId: input.id !== undefined,
      senderId: caller.userId,
      senderDeviceId: caller.deviceId,
      recipientId: input.to,
      intensity: input.intensity,
      pattern: input.pattern,
      createdAt: now,
    });
    if (created) this.#deps.metrics.tapsCreated.inc({ via });
    return { tap: toTapView(row, caller.userId), created };
  }

  /** The caller's taps, both directions, paged by the positions of the caller's log. */
  async list(userId: string, query: ListTapsQuery): Promise<TapPage> {
    if (query.before !== undefined && query.after !== undefined) {
      throw new AppError('INVALID_INPUT', 'Use either before (paging back) or after (catching up), not both');
    }
    const after = query.after === undefined ? undefined : Number(query.after);
    const rows = await readTapEntries(this.#deps.database.db, {
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
    if (after !== undefined) nextCursor = String(last ? last.pos : after);
    else nextCursor = hasMore && last ? String(last.pos) : null;
    return { taps: page.map(({ tap }) => toTapView(tap, userId)), nextCursor, hasMore };
  }

  /** One tap with its per-device delivery record; only its sender and recipient may see it. */
  async detail(userId: string, tapId: string): Promise<TapDetail> {
    const detail = await readTapDetail(this.#deps.database.db, tapId, userId);
    if (!detail || (detail.tap.from !== userId && detail.tap.to !== userId)) throw notFound('Tap');
    return detail;
  }
}

/**
 * The read behind `detail`, without the per-user authorization: for support
 * tools that run with the database's own rights (`./navi inspect-tap`). The
 * tap's cursor is the one in `viewer`'s log, the recipient's by default.
 */
export async function readTapDetail(db: Executor, tapId: string, viewer?: string): Promise<TapDetail | undefined> {
  const row = await findTap(db, tapId);
  if (!row) return undefined;
  const deliveries = await deliveriesOfTap(db, row.seq);
  return {
    tap: toTapView(row, viewer ?? row.recipient_id),
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
