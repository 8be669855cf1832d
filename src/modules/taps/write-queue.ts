import type { DatabaseHandle } from '../../db/database.ts';
import { GroupCommit } from '../../db/group-commit.ts';
import type { AppError } from '../../errors.ts';
import { applyAck, keepAppError, type Ack, type AckOutcome } from './acks.ts';
import { writeTapBatch, type TapDraft, type TapWriterOptions, type WrittenTap } from './writer.ts';

type HotWrite = { kind: 'tap'; draft: TapDraft } | { kind: 'ack'; ack: Ack };
type HotResult = WrittenTap | AckOutcome;

/**
 * The hot write path, taps and acks, group-committed together: whatever
 * arrives while a transaction commits shares the next one. Under load a
 * stream of sends and acks costs one commit (one fsync) per batch, not one
 * per write; a tap is still answered only after its commit.
 */
export class WriteQueue {
  readonly #commits: GroupCommit<HotWrite, HotResult>;

  constructor(database: DatabaseHandle, tapOptions: TapWriterOptions) {
    this.#commits = new GroupCommit<HotWrite, HotResult>((writes) =>
      database.db.transaction().execute(async (trx) => {
        const results: Array<HotResult | AppError> = new Array(writes.length);
        const taps = writes.flatMap((write, i) => (write.kind === 'tap' ? [{ i, draft: write.draft }] : []));
        if (taps.length > 0) {
          tapOptions.metrics.tapBatchSize.observe(taps.length);
          await database.lockTapSequence(trx);
          const written = await writeTapBatch(
            trx,
            tapOptions,
            taps.map((t) => t.draft),
          );
          taps.forEach((t, j) => (results[t.i] = written[j]!));
        }
        for (const [i, write] of writes.entries()) {
          if (write.kind === 'ack') results[i] = await applyAck(trx, write.ack).catch(keepAppError);
        }
        return results;
      }),
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
