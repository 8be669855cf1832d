import { defineProcedures, type ProcedureContext } from '../db/procedures.ts';
import type { Trx } from '../db/schema.ts';
import { logHead } from '../delivery/log-repo.ts';
import { deviceOwner } from '../modules/devices/repo.ts';
import { partnerIdsOf } from '../modules/pairing/repo.ts';

export interface ConnectionSnapshot {
  /** The device still belongs to the user (it was not signed out or removed meanwhile). */
  deviceActive: boolean;
  /** The newest position of the user's log. */
  head: number;
  partnerIds: string[];
}

/**
 * What a connection needs before it says hello, in one trip to the database:
 * at tens of thousands of reconnecting phones, one each instead of three.
 * Read after the connection subscribed to its user's events, so nothing that
 * happens after this read can be missed.
 */
async function connectionSnapshot(
  trx: Trx,
  input: { userId: string; deviceId: string },
  _context: ProcedureContext,
): Promise<ConnectionSnapshot> {
  const owner = await deviceOwner(trx, input.deviceId);
  const head = await logHead(trx, input.userId);
  const partnerIds = await partnerIdsOf(trx, input.userId);
  return { deviceActive: owner === input.userId, head, partnerIds };
}

export const realtimeProcedures = defineProcedures(import.meta.url, { connectionSnapshot });
