import { defineProcedures } from '../db/procedures.ts';
import { writeBatch } from './write-batch.ts';

/** The delivery procedures, run next to the data (db/procedures.ts). */
export const deliveryProcedures = defineProcedures(import.meta.url, { writeBatch });
