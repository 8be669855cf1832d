import { toIsoOrNull } from '../../clock.ts';
import type { TapRow } from '../../db/schema.ts';
import type { TapView } from './schemas.ts';

export const toCursor = (seq: number): string => String(seq);

export function toTapView(row: TapRow): TapView {
  return {
    id: row.id,
    cursor: toCursor(row.seq),
    from: row.sender_id,
    to: row.recipient_id,
    intensity: row.intensity,
    pattern: row.pattern,
    createdAt: new Date(row.created_at).toISOString(),
    status: row.seen_at !== null ? 'seen' : row.delivered_at !== null ? 'delivered' : 'sent',
    deliveredAt: toIsoOrNull(row.delivered_at),
    seenAt: toIsoOrNull(row.seen_at),
  };
}
