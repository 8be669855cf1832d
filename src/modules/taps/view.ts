import { toIsoOrNull } from '../../clock.ts';
import type { TapRow } from '../../db/schema.ts';
import type { TapView } from './schemas.ts';

/** A tap as `viewer` (its sender or its recipient) sees it: with the tap's position in the viewer's log. */
export function toTapView(row: TapRow, viewerId: string): TapView {
  return {
    id: row.id,
    cursor: String(viewerId === row.sender_id ? row.sender_pos : row.recipient_pos),
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
