import type { DatabaseHandle } from '../../db/database.ts';
import { GroupCommit } from '../../db/group-commit.ts';
import type { AppError } from '../../errors.ts';
import type { Metrics } from '../../metrics.ts';
import type { Ack, AckOutcome } from './acks.ts';
import { isRefusal, toAppError, type HotWriteInput } from './hot-writes.ts';
import type { DeliveryPolicy, TapDraft, WrittenTap } from './writer.ts';

type HotWrite = { kind: 'tap'; draft: TapDraft } | { kind: 'ack'; ack: Ack };
type HotResult = WrittenTap | AckOutcome;

/**
 * The hot write path, taps and acks, group-committed together: whatever
 * arrives while a batch commits shares the next one, so under load a stream
 * of sends and acks costs one commit (one fsync) per batch, not one per
 * write. A tap is still answered only after its commit. Each batch is one
 * procedure call (hot-writes.ts): on SQLite one message to the database
 * thread, however many statements it takes.
 */
export class WriteQueue {
  readonly #commits: GroupCommit<HotWrite, HotResult>;

  constructor(database: DatabaseHandle, policy: DeliveryPolicy, metrics: Metrics) {
    this.#commits = new GroupCommit<HotWrite, HotResult>(
      async (writes) => {
        const input: HotWriteInput = { taps: [], acks: [], policy };
        for (const write of writes) {
          if (write.kind === 'tap') input.taps.push(write.draft);
          else input.acks.push(write.ack);
        }
        if (input.taps.length > 0) metrics.tapBatchSize.observe(input.taps.length);
        const output = await database.run('writeHot', input);
        if (output.counts.offlineHandoffs > 0) metrics.pushHandoffs.inc({ trigger: 'offline' }, output.counts.offlineHandoffs);
        for (const { state, reason } of output.counts.settled) metrics.pushResolutions.inc({ state, reason });
        const taps = output.taps.values();
        const acks = output.acks.values();
        return writes.map((write): HotResult | AppError => {
          const outcome = write.kind === 'tap' ? taps.next().value! : acks.next().value!;
          return isRefusal(outcome) ? toAppError(outcome) : outcome;
        });
      },
      { maxInFlight: 2 },
    );
  }

  writeTap(draft: TapDraft): Promise<WrittenTap> {
    return this.#commits.submit({ kind: 'tap', draft }) as Promise<WrittenTap>;
  }

  writeAck(ack: Ack): Promise<AckOutcome> {
    return this.#commits.submit({ kind: 'ack', ack }) as Promise<AckOutcome>;
  }

  /** Resolves when everything submitted so far is committed (graceful shutdown). */
  drain(): Promise<void> {
    return this.#commits.drain();
  }
}
