import { writeHot } from '../modules/taps/hot-writes.ts';
import { connectionSnapshot } from '../realtime/snapshot.ts';
import type { Trx } from './schema.ts';

interface Procedure<I, O> {
  run: (trx: Trx, input: I) => Promise<O>;
  /** It inserts taps, so on PostgreSQL it takes the lock that orders cursors (database.ts). */
  insertsTaps: boolean;
}

const procedure = <I, O>(run: (trx: Trx, input: I) => Promise<O>, insertsTaps = false): Procedure<I, O> => ({ run, insertsTaps });

/**
 * Transactions that run next to the data: on SQLite, inside the database
 * thread as one message (instead of one round trip per statement); on
 * PostgreSQL, in the caller. Input and output are plain data.
 */
export const PROCEDURES = {
  writeHot: procedure(writeHot, true),
  connectionSnapshot: procedure(connectionSnapshot),
};

export type ProcedureName = keyof typeof PROCEDURES;
export type ProcedureInput<N extends ProcedureName> = Parameters<(typeof PROCEDURES)[N]['run']>[1];
export type ProcedureOutput<N extends ProcedureName> = Awaited<ReturnType<(typeof PROCEDURES)[N]['run']>>;
