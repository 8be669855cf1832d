import type { Trx } from '../../db/schema.ts';
import { AppError, type ErrorCode } from '../../errors.ts';
import { applyAck, type Ack, type AckOutcome } from './acks.ts';
import { writeTapBatch, type DeliveryPolicy, type PolicyCounts, type TapDraft, type WrittenTap } from './writer.ts';

export interface HotWriteInput {
  taps: TapDraft[];
  acks: Ack[];
  policy: DeliveryPolicy;
}

/** A refusal that belongs to one write; plain data, so it can cross a thread. */
export interface Refusal {
  refused: { code: ErrorCode; detail: string };
}

export interface HotWriteOutput {
  taps: Array<WrittenTap | Refusal>;
  acks: Array<AckOutcome | Refusal>;
  counts: PolicyCounts;
}

const refusal = (error: AppError): Refusal => ({ refused: { code: error.code, detail: error.message } });
export const isRefusal = (value: object): value is Refusal => 'refused' in value;
export const toAppError = ({ refused }: Refusal): AppError => new AppError(refused.code, refused.detail);

/**
 * One batch of the hot write path, inside one transaction: taps, then acks.
 * Plain data in and out, so it runs the same on the SQLite thread (as one
 * message, not a round trip per statement) and on PostgreSQL.
 */
export async function writeHot(trx: Trx, input: HotWriteInput): Promise<HotWriteOutput> {
  const counts: PolicyCounts = { offlineHandoffs: 0, settled: [] };
  const taps =
    input.taps.length === 0
      ? []
      : (await writeTapBatch(trx, input.policy, counts, input.taps)).map((outcome) =>
          outcome instanceof AppError ? refusal(outcome) : outcome,
        );
  const acks: Array<AckOutcome | Refusal> = [];
  for (const ack of input.acks) {
    try {
      acks.push(await applyAck(trx, ack));
    } catch (error) {
      if (!(error instanceof AppError)) throw error;
      acks.push(refusal(error));
    }
  }
  return { taps, acks, counts };
}
