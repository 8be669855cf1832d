import type { DeliveryChannel, DeliveryStatus, Intensity, LogEntryRow, Pattern, TapDeliveriesTable, TapRow, Trx } from '../db/schema.ts';
import type { ProcedureContext } from '../db/procedures.ts';
import { AppError, type ErrorCode } from '../errors.ts';
import { displayNames } from '../modules/accounts/repo.ts';
import { devicesOfUsers } from '../modules/devices/repo.ts';
import { coupleKey, pairedCouples } from '../modules/pairing/repo.ts';
import {
  deliveriesForAcks,
  deliveryKeyOf,
  insertDeliveries,
  newDelivery,
  recordAck,
  type AckedDelivery,
  type PushJob,
} from './deliveries-repo.ts';
import { appendEntries, lockLogs, type NewEntry } from './log-repo.ts';
import { firstPush, type DeliveryPolicy } from './policy.ts';
import { advanceTap, insertTaps, tapsById } from './taps-repo.ts';

/** A tap as it arrives, before it has positions in the logs. */
export interface TapDraft {
  id: string;
  /** The client chose the id, so a tap with it may already exist (a retry). */
  clientChosenId: boolean;
  senderId: string;
  senderDeviceId: string;
  recipientId: string;
  intensity: Intensity;
  pattern: Pattern;
  createdAt: number;
  /** The recipient's devices holding a live socket when the tap was sent. */
  onlineDeviceIds: string[];
}

export type AckStatus = Exclude<DeliveryStatus, 'pending'>;

/** A device acknowledging a tap: over its socket, or over HTTP (after a push, or found in history). */
export interface Ack {
  tapId: string;
  userId: string;
  deviceId: string;
  status: AckStatus;
  via: 'websocket' | 'http';
  at: number;
}

export interface WrittenTap {
  row: TapRow;
  /** False when the draft repeated an existing tap (an idempotent retry). */
  created: boolean;
  /** The entries appended for it (the sender's, then the recipient's); none for a retry. */
  entries: LogEntryRow[];
  /** Devices without a live socket to push now: claimed in this very transaction. */
  pushes: PushJob[];
  /** When the first ack window of a device with a live socket ends. */
  pushDueAt?: number;
}

export interface WrittenAck {
  /** Whether this ack moved the device's delivery forward (false for a repeat). */
  advanced: boolean;
  status: DeliveryStatus;
  /** The entry appended to the sender's log when the tap as a whole moved forward. */
  receipt?: LogEntryRow;
}

/** A refusal that belongs to one write; plain data, so it can cross a thread. */
export interface Refusal {
  refused: { code: ErrorCode; detail: string };
}

export interface BatchInput {
  taps: TapDraft[];
  acks: Ack[];
  policy: DeliveryPolicy;
}

/** What the policy decided, for the metrics (counted where the metrics live). */
export interface PolicyCounts {
  offlinePushes: number;
  settled: Array<{ state: string; reason: string }>;
}

export interface BatchOutput {
  taps: Array<WrittenTap | Refusal>;
  acks: Array<WrittenAck | Refusal>;
  counts: PolicyCounts;
}

export const isRefusal = (value: object): value is Refusal => 'refused' in value;
export const toAppError = ({ refused }: Refusal): AppError => new AppError(refused.code, refused.detail);
const refuse = (code: ErrorCode, detail: string): Refusal => ({ refused: { code, detail } });

const RANK: Record<DeliveryStatus, number> = { pending: 0, delivered: 1, seen: 2 };

const sameTap = (row: TapRow, draft: TapDraft): boolean =>
  row.sender_id === draft.senderId &&
  row.recipient_id === draft.recipientId &&
  row.intensity === draft.intensity &&
  row.pattern === draft.pattern;

const retryOf = (row: TapRow, draft: TapDraft): WrittenTap | Refusal =>
  sameTap(row, draft)
    ? { row, created: false, entries: [], pushes: [] }
    : refuse('IDEMPOTENCY_CONFLICT', 'A different tap already uses this id; use a new id for a new tap');

/**
 * One batch of the hot path, taps and acks, in one transaction, with a
 * handful of set-based statements whatever the batch size. Follows the log's
 * lock order (log-repo.ts): first the logs of every user the batch may append
 * to, then everything else. Per-item refusals are returned in place.
 */
export async function writeBatch(trx: Trx, input: BatchInput, { dialect }: ProcedureContext): Promise<BatchOutput> {
  const counts: PolicyCounts = { offlinePushes: 0, settled: [] };
  const chosenIds = input.taps.filter((d) => d.clientChosenId).map((d) => d.id);
  const ackTapIds = input.acks.map((a) => a.tapId);
  const known = await tapsById(trx, [...chosenIds, ...ackTapIds]);
  const newDrafts = input.taps.filter((d) => !known.has(d.id));
  const present = await lockLogs(trx, dialect, [
    ...newDrafts.flatMap((d) => [d.senderId, d.recipientId]),
    ...ackTapIds.flatMap((id) => known.get(id)?.sender_id ?? []),
  ]);
  // Under the locks, acks see the state every earlier ack of these taps left.
  const acked = dialect === 'postgres' && ackTapIds.length > 0 ? await tapsById(trx, ackTapIds) : known;

  const taps = await writeTaps(trx, input, counts, known, present);
  const acks = await writeAcks(trx, input.acks, acked);
  const receipts = acks.filter((a): a is AckDecided & { receipt: NewEntry } => !isRefusal(a) && a.receipt !== undefined);
  const stored = await appendEntries(
    trx,
    receipts.map((a) => a.receipt),
  );
  const written = acks.map((ack): WrittenAck | Refusal => {
    if (isRefusal(ack) || ack.receipt === undefined) return ack as WrittenAck | Refusal;
    return { ...ack, receipt: stored[receipts.indexOf(ack as AckDecided & { receipt: NewEntry })]! };
  });
  return { taps, acks: written, counts };
}

async function writeTaps(
  trx: Trx,
  input: BatchInput,
  counts: PolicyCounts,
  known: Map<string, TapRow>,
  present: Set<string>,
): Promise<Array<WrittenTap | Refusal>> {
  const drafts = input.taps;
  const couples = await pairedCouples(
    trx,
    drafts.filter((d) => !known.has(d.id)).map((d) => [d.senderId, d.recipientId]),
  );
  const outcomes: Array<WrittenTap | Refusal | undefined> = [];
  const toInsert = new Map<string, TapDraft>();
  drafts.forEach((draft, i) => {
    const stored = known.get(draft.id);
    if (stored) outcomes[i] = retryOf(stored, draft);
    else if (!present.has(draft.senderId)) outcomes[i] = refuse('INVALID_TOKEN', 'This account no longer exists');
    else if (!couples.has(coupleKey(draft.senderId, draft.recipientId)) || !present.has(draft.recipientId))
      outcomes[i] = refuse('NOT_PAIRED', 'You can only send taps to a partner');
    else if (!toInsert.has(draft.id)) toInsert.set(draft.id, draft);
  });
  if (toInsert.size === 0) return outcomes as Array<WrittenTap | Refusal>;

  const inserting = [...toInsert.values()];
  const entries = await appendEntries(
    trx,
    inserting.flatMap((d) => [
      { user_id: d.senderId, kind: 'tap' as const, subject: d.id, peer_id: d.recipientId, detail: null, at: d.createdAt },
      { user_id: d.recipientId, kind: 'tap' as const, subject: d.id, peer_id: d.senderId, detail: null, at: d.createdAt },
    ]),
  );
  const rows = await insertTaps(
    trx,
    inserting.map((d, i) => ({ draft: d, senderPos: entries[2 * i]!.pos, recipientPos: entries[2 * i + 1]!.pos })),
  );
  const plans = await planDeliveries(trx, input.policy, counts, [...rows.values()], drafts);
  drafts.forEach((draft, i) => {
    if (outcomes[i]) return;
    const row = rows.get(draft.id)!;
    // The first draft with an id created the tap; a duplicate within the same batch is its retry.
    if (toInsert.get(draft.id) !== draft) return void (outcomes[i] = retryOf(row, draft));
    const at = inserting.indexOf(draft);
    const plan = plans.get(row.id)!;
    outcomes[i] = { row, created: true, entries: [entries[2 * at]!, entries[2 * at + 1]!], pushes: plan.pushes, pushDueAt: plan.dueAt };
  });
  return outcomes as Array<WrittenTap | Refusal>;
}

interface DeliveryPlan {
  pushes: PushJob[];
  dueAt?: number;
}

/**
 * One delivery row per device of each recipient, with the delivery policy
 * applied at once (docs/delivery.md): a device with a live socket gets the ack
 * window before push takes over; a device without one is either claimed for
 * an immediate push (handed to the dispatcher in memory after the commit), or
 * settled right here when there is nothing to push to.
 */
async function planDeliveries(
  trx: Trx,
  policy: DeliveryPolicy,
  counts: PolicyCounts,
  taps: TapRow[],
  drafts: TapDraft[],
): Promise<Map<string, DeliveryPlan>> {
  const online = new Set(drafts.flatMap((draft) => draft.onlineDeviceIds));
  const devices = await devicesOfUsers(trx, [...new Set(taps.map((t) => t.recipient_id))]);
  const devicesOf = Map.groupBy(devices, (device) => device.user_id);
  const plans = new Map<string, DeliveryPlan>();
  const rows: TapDeliveriesTable[] = [];
  const toPush: Array<{ tap: TapRow; device: (typeof devices)[number] }> = [];

  for (const tap of taps) {
    const plan: DeliveryPlan = { pushes: [] };
    plans.set(tap.id, plan);
    for (const device of devicesOf.get(tap.recipient_id) ?? []) {
      const row = newDelivery(tap.seq, device.id, tap.recipient_id);
      rows.push(row);
      const push = firstPush(
        { pushToken: device.push_token, pushEnvironment: device.push_environment, tokenInvalidAt: device.push_token_invalid_at },
        online.has(device.id),
        tap.created_at,
        policy,
      );
      row.push_state = push.state;
      row.push_trigger = push.trigger;
      if (push.trigger === 'offline') counts.offlinePushes++;
      if ('reason' in push) {
        row.push_last_reason = push.reason;
        counts.settled.push({ state: push.state, reason: push.reason });
        continue;
      }
      row.push_due_at = push.dueAt;
      if (push.state === 'sending') toPush.push({ tap, device });
      else plan.dueAt = Math.min(plan.dueAt ?? Infinity, push.dueAt);
    }
  }
  await insertDeliveries(trx, rows);
  if (toPush.length > 0) {
    const names = await displayNames(
      trx,
      toPush.map(({ tap }) => tap.sender_id),
    );
    for (const { tap, device } of toPush) {
      plans.get(tap.id)!.pushes.push({
        tapSeq: tap.seq,
        deviceId: device.id,
        tap,
        deviceExists: true,
        platform: device.platform,
        status: 'pending',
        trigger: 'offline',
        attempts: 0,
        lastReason: null,
        pushToken: device.push_token,
        pushEnvironment: device.push_environment,
        tokenInvalidAt: device.push_token_invalid_at,
        senderName: names.get(tap.sender_id) ?? null,
      });
    }
  }
  return plans;
}

/**
 * Acks only move forward (pending -> delivered -> seen; seen implies
 * delivered), are idempotent, and come only from the recipient. When the tap
 * as a whole moves forward, a receipt is due in the sender's log.
 */
/** An ack applied, with its receipt still to be appended. */
type AckDecided = Omit<WrittenAck, 'receipt'> & { receipt?: NewEntry };

async function writeAcks(trx: Trx, acks: Ack[], taps: Map<string, TapRow>): Promise<Array<AckDecided | Refusal>> {
  if (acks.length === 0) return [];
  const deliveries = await deliveriesForAcks(
    trx,
    acks.flatMap((ack) => {
      const tap = taps.get(ack.tapId);
      return tap ? [{ tapSeq: tap.seq, deviceId: ack.deviceId }] : [];
    }),
  );
  const outcomes: Array<AckDecided | Refusal> = [];
  for (const ack of acks) {
    const tap = taps.get(ack.tapId);
    // Only the recipient acks; anyone else's ack reveals nothing.
    if (!tap || tap.recipient_id !== ack.userId) {
      outcomes.push(refuse('NOT_FOUND', 'Tap not found'));
      continue;
    }
    const key = { tapSeq: tap.seq, deviceId: ack.deviceId };
    let delivery = deliveries.get(deliveryKeyOf(key));
    if (!delivery) {
      // A device added after the tap was sent (it found the tap in history).
      await insertDeliveries(trx, [{ ...newDelivery(tap.seq, ack.deviceId, ack.userId), push_state: 'not_needed' }]);
      delivery = { ...key, status: 'pending', pushState: 'not_needed', channel: null } satisfies AckedDelivery;
      deliveries.set(deliveryKeyOf(key), delivery);
    }
    if (RANK[ack.status] <= RANK[delivery.status]) {
      outcomes.push({ advanced: false, status: delivery.status });
      continue;
    }
    const channel: DeliveryChannel = ack.via === 'websocket' ? 'websocket' : delivery.pushState === 'sent' ? 'push' : 'http';
    await recordAck(trx, key, { status: ack.status, channel, at: ack.at });
    delivery.status = ack.status;
    const outcome: AckDecided = { advanced: true, status: ack.status };
    if (ack.status === 'seen' ? tap.seen_at === null : tap.delivered_at === null) {
      await advanceTap(trx, tap.id, ack.status, ack.at);
      tap.delivered_at ??= ack.at;
      if (ack.status === 'seen') tap.seen_at = ack.at;
      outcome.receipt = {
        user_id: tap.sender_id,
        kind: 'tap.status',
        subject: tap.id,
        peer_id: tap.recipient_id,
        detail: ack.status,
        at: ack.at,
      };
    }
    outcomes.push(outcome);
  }
  return outcomes;
}
