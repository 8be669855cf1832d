import type { AppContext } from '../../src/context.ts';
import { appendEntries, lockLogs } from '../../src/delivery/log-repo.ts';
import { insertTaps } from '../../src/delivery/taps-repo.ts';
import { uuidv7 } from '../../src/ids.ts';
import type { User } from './clients.ts';

/**
 * Writes a long history of taps from one partner to the other straight
 * through the delivery log's repos (thousands of taps over the API would take
 * the test's whole budget): the same rows the service writes, without
 * delivery rows (nothing is to be pushed).
 */
export async function writeBacklog(ctx: AppContext, from: User, to: User, count: number): Promise<void> {
  const start = Date.now();
  for (let done = 0; done < count; done += 1000) {
    const drafts = Array.from({ length: Math.min(1000, count - done) }, (_, i) => ({
      id: uuidv7(start + done + i),
      clientChosenId: false,
      senderId: from.userId,
      senderDeviceId: from.deviceId,
      recipientId: to.userId,
      intensity: 'light' as const,
      pattern: 'single' as const,
      createdAt: start + done + i,
      onlineDeviceIds: [],
    }));
    await ctx.database.transaction(async (trx) => {
      await lockLogs(trx, ctx.database.dialect, [from.userId, to.userId]);
      const entries = await appendEntries(
        trx,
        drafts.flatMap((d) => [
          { user_id: d.senderId, kind: 'tap' as const, subject: d.id, peer_id: d.recipientId, detail: null, at: d.createdAt },
          { user_id: d.recipientId, kind: 'tap' as const, subject: d.id, peer_id: d.senderId, detail: null, at: d.createdAt },
        ]),
      );
      await insertTaps(
        trx,
        drafts.map((draft, i) => ({ draft, senderPos: entries[2 * i]!.pos, recipientPos: entries[2 * i + 1]!.pos })),
      );
    });
  }
}
