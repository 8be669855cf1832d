import type { Clock } from '../clock.ts';
import type { DatabaseHandle } from '../db/database.ts';
import { GroupCommit } from '../db/group-commit.ts';
import type { DeliveryStatus, LogEntryRow, TapRow } from '../db/schema.ts';
import type { Metrics } from '../metrics.ts';
import { displayNames } from '../modules/accounts/repo.ts';
import type { EventBus } from '../realtime/events.ts';
import type { Presence } from '../realtime/presence.ts';
import { logHead, logHeads, readEntries } from './log-repo.ts';
import { toLogMessage, type EntryContext, type LogMessage } from './messages.ts';
import type { DeliveryPolicy } from './policy.ts';
import { deliveryProcedures } from './procedures.ts';
import type { PushDispatcher } from './push-dispatcher.ts';
import {
  isRefusal,
  toAppError,
  type Ack,
  type AckStatus,
  type BatchInput,
  type TapDraft,
  type WrittenAck,
  type WrittenTap,
} from './write-batch.ts';

interface Deps {
  database: DatabaseHandle;
  clock: Clock;
  bus: EventBus;
  metrics: Metrics;
  presence: Presence;
  policy: DeliveryPolicy;
  /** Absent when no push provider is configured. */
  push?: PushDispatcher;
}

type Write = { kind: 'tap'; draft: TapDraft } | { kind: 'ack'; ack: Ack };
type Written = WrittenTap | WrittenAck;

export interface Principal {
  userId: string;
  deviceId: string;
}

/**
 * The one home of delivery: the per-user logs and the delivery policy
 * (docs/delivery.md). Features call it to send taps, ack them, and append
 * other entries; connections read the logs through it.
 *
 * Taps and acks are group-committed together: whatever arrives while a batch
 * commits shares the next one, so under load a stream of sends and acks costs
 * one commit (one fsync) per batch, not one per write. Each batch is one
 * procedure call (write-batch.ts): on SQLite one message to the database
 * thread, however many statements it takes. A write is answered only after
 * its commit; its entries are then published to the users' live devices.
 */
export class DeliveryService {
  readonly #deps: Deps;
  readonly #commits: GroupCommit<Write, Written>;

  constructor(deps: Deps) {
    this.#deps = deps;
    this.#commits = new GroupCommit<Write, Written>((writes) => this.#commit(writes), { maxInFlight: 2 });
  }

  /** Stores a tap (committed when this resolves), publishes its entries and hands off its pushes. */
  async sendTap(draft: Omit<TapDraft, 'onlineDeviceIds'>): Promise<{ row: TapRow; created: boolean }> {
    const onlineDeviceIds = await this.#deps.presence.onlineDevices(draft.recipientId);
    const written = (await this.#commits.submit({ kind: 'tap', draft: { ...draft, onlineDeviceIds } })) as WrittenTap;
    if (written.created) {
      this.publish(written.entries.map((row) => ({ row, context: { tap: written.row } })));
      if (written.pushes.length > 0) this.#deps.push?.dispatchClaimed(written.pushes);
      if (written.pushDueAt !== undefined) this.#deps.push?.wakeAt(written.pushDueAt);
    }
    return { row: written.row, created: written.created };
  }

  /** A device acknowledges a tap it received; the sender's log gets a receipt when the tap as a whole moves forward. */
  async ack(
    principal: Principal,
    tapId: string,
    status: AckStatus,
    via: Ack['via'],
  ): Promise<{ advanced: boolean; status: DeliveryStatus }> {
    const written = (await this.#commits.submit({
      kind: 'ack',
      ack: { ...principal, tapId, status, via, at: this.#deps.clock.now() },
    })) as WrittenAck;
    if (written.advanced) this.#deps.metrics.deliveriesAcked.inc({ status, channel: via });
    if (written.receipt) this.publish([{ row: written.receipt }]);
    return { advanced: written.advanced, status: written.status };
  }

  /** Entries committed elsewhere (pairing changes), announced to their users' live devices. */
  publish(entries: Array<{ row: LogEntryRow; context?: EntryContext }>): void {
    for (const { row, context } of entries) {
      this.#deps.bus.publish(row.user_id, { type: 'entry', message: toLogMessage(row, context) });
    }
  }

  /** Up to `limit` entries of a user's log after `after`, oldest first, as the user's devices see them. */
  async readLog(userId: string, after: number, limit: number): Promise<LogMessage[]> {
    const rows = await readEntries(this.#deps.database.db, userId, after, limit);
    const partners = rows.filter((row) => row.kind === 'pairing.created').map((row) => row.peer_id);
    const [names, online] = await Promise.all([displayNames(this.#deps.database.db, partners), this.#deps.presence.onlineUsers(partners)]);
    return rows.map((row) => {
      const partner = { userId: row.peer_id, displayName: names.get(row.peer_id) ?? null, online: online.has(row.peer_id) };
      return toLogMessage(row, { tap: row.tap, partner });
    });
  }

  /** The newest position of a user's log. */
  head(userId: string): Promise<number> {
    return logHead(this.#deps.database.db, userId);
  }

  /** The newest positions of several users' logs, in slices of a few hundred per read. */
  async heads(userIds: string[]): Promise<Map<string, number>> {
    const heads = new Map<string, number>();
    for (let i = 0; i < userIds.length; i += 500) {
      for (const [id, head] of await logHeads(this.#deps.database.db, userIds.slice(i, i + 500))) heads.set(id, head);
    }
    return heads;
  }

  /** Resolves when every write submitted so far is committed (graceful shutdown). */
  drain(): Promise<void> {
    return this.#commits.drain();
  }

  async #commit(writes: Write[]): Promise<Array<Written | Error>> {
    const { metrics } = this.#deps;
    const input: BatchInput = { taps: [], acks: [], policy: this.#deps.policy };
    for (const write of writes) {
      if (write.kind === 'tap') input.taps.push(write.draft);
      else input.acks.push(write.ack);
    }
    if (input.taps.length > 0) metrics.tapBatchSize.observe(input.taps.length);
    const output = await this.#deps.database.run(deliveryProcedures.writeBatch, input);
    if (output.counts.offlinePushes > 0) metrics.pushHandoffs.inc({ trigger: 'offline' }, output.counts.offlinePushes);
    for (const { state, reason } of output.counts.settled) metrics.pushResolutions.inc({ state, reason });
    const taps = output.taps.values();
    const acks = output.acks.values();
    return writes.map((write) => {
      const outcome = write.kind === 'tap' ? taps.next().value! : acks.next().value!;
      return isRefusal(outcome) ? toAppError(outcome) : outcome;
    });
  }
}
