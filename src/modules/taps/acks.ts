import type { Clock } from '../../clock.ts';
import type { DeliveryChannel, DeliveryStatus, Trx } from '../../db/schema.ts';
import { notFound } from '../../errors.ts';
import type { Metrics } from '../../metrics.ts';
import type { EventBus } from '../../realtime/events.ts';
import { toCursor } from './view.ts';
import { newDelivery } from './writer.ts';
import type { WriteQueue } from './write-queue.ts';

export type AckStatus = Exclude<DeliveryStatus, 'pending'>;
/** How the ack arrived: over the device's socket, or over HTTP (after a push, or a history fetch). */
export type AckVia = 'websocket' | 'http';

export interface Ack {
  tapId: string;
  userId: string;
  deviceId: string;
  status: AckStatus;
  via: AckVia;
  at: number;
}

interface Receipt {
  senderId: string;
  tapId: string;
  cursor: string;
  status: AckStatus;
  at: number;
}

export interface AckOutcome {
  result: AckResult;
  receipt?: Receipt;
}

export interface AckResult {
  /** Whether this ack moved the device's delivery forward (false for a repeat). */
  advanced: boolean;
  status: DeliveryStatus;
}

const RANK: Record<DeliveryStatus, number> = { pending: 0, delivered: 1, seen: 2 };

interface Deps {
  writes: WriteQueue;
  clock: Clock;
  bus: EventBus;
  metrics: Metrics;
}

/**
 * Device acknowledgements. Acks only move forward (pending -> delivered ->
 * seen, and seen implies delivered), are idempotent, and come only from the
 * recipient. An ack cancels a push that has not started. When the tap as a
 * whole becomes delivered or seen, the sender's devices get a receipt.
 */
export class AckService {
  readonly #deps: Deps;

  constructor(deps: Deps) {
    this.#deps = deps;
  }

  async ack(principal: { userId: string; deviceId: string }, tapId: string, status: AckStatus, via: AckVia): Promise<AckResult> {
    const { result, receipt } = await this.#deps.writes.writeAck({ ...principal, tapId, status, via, at: this.#deps.clock.now() });
    if (result.advanced) this.#deps.metrics.deliveriesAcked.inc({ status, channel: via });
    if (receipt) {
      this.#deps.bus.publish(receipt.senderId, {
        type: 'tap.status',
        tapId: receipt.tapId,
        cursor: receipt.cursor,
        status: receipt.status,
        at: new Date(receipt.at).toISOString(),
      });
    }
    return result;
  }
}

export async function applyAck(trx: Trx, ack: Ack): Promise<AckOutcome> {
  const tap = await trx
    .selectFrom('taps')
    .select(['seq', 'sender_id', 'recipient_id', 'delivered_at', 'seen_at'])
    .where('id', '=', ack.tapId)
    .executeTakeFirst();
  // Only the recipient acks; anyone else's ack reveals nothing.
  if (!tap || tap.recipient_id !== ack.userId) throw notFound('Tap');

  let delivery = await trx
    .selectFrom('tap_deliveries')
    .select(['status', 'push_state', 'channel'])
    .where('tap_seq', '=', tap.seq)
    .where('device_id', '=', ack.deviceId)
    .executeTakeFirst();
  if (!delivery) {
    // A device added after the tap was sent (it found the tap in history).
    delivery = { status: 'pending', push_state: 'not_needed', channel: null };
    await trx
      .insertInto('tap_deliveries')
      .values({ ...newDelivery(tap.seq, ack.deviceId, ack.userId), push_state: 'not_needed' })
      .execute();
  }
  if (RANK[ack.status] <= RANK[delivery.status]) return { result: { advanced: false, status: delivery.status } };

  const channel: DeliveryChannel = ack.via === 'websocket' ? 'websocket' : delivery.push_state === 'sent' ? 'push' : 'http';
  await trx
    .updateTable('tap_deliveries')
    .set((eb) => ({
      status: ack.status,
      channel: delivery.channel ?? channel,
      delivered_at: eb.fn.coalesce('delivered_at', eb.val(ack.at)),
      seen_at: ack.status === 'seen' ? ack.at : null,
      push_state: delivery.push_state === 'waiting' ? 'not_needed' : delivery.push_state,
      push_due_at: delivery.push_state === 'waiting' ? null : undefined,
    }))
    .where('tap_seq', '=', tap.seq)
    .where('device_id', '=', ack.deviceId)
    .execute();

  const tapAdvances = ack.status === 'seen' ? tap.seen_at === null : tap.delivered_at === null;
  if (!tapAdvances) return { result: { advanced: true, status: ack.status } };
  await trx
    .updateTable('taps')
    .set((eb) => ({
      delivered_at: eb.fn.coalesce('delivered_at', eb.val(ack.at)),
      ...(ack.status === 'seen' ? { seen_at: ack.at } : {}),
    }))
    .where('id', '=', ack.tapId)
    .execute();
  return {
    result: { advanced: true, status: ack.status },
    receipt: { senderId: tap.sender_id, tapId: ack.tapId, cursor: toCursor(tap.seq), status: ack.status, at: ack.at },
  };
}
