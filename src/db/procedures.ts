import { writeHot } from '../modules/taps/hot-writes.ts';
import type { Trx } from './schema.ts';

/**
 * Transactions that run next to the data: on SQLite, inside the database
 * thread as one message (instead of one round trip per statement); on
 * PostgreSQL, in the caller. Input and output are plain data.
 */
export const PROCEDURES = {
  writeHot,
} satisfies Record<string, (trx: Trx, input: never) => Promise<unknown>>;

export type ProcedureName = keyof typeof PROCEDURES;
export type ProcedureInput<N extends ProcedureName> = Parameters<(typeof PROCEDURES)[N]>[1];
export type ProcedureOutput<N extends ProcedureName> = Awaited<ReturnType<(typeof PROCEDURES)[N]>>;
