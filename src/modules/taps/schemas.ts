import { Type, type Static } from 'typebox';
import { Cursor, NullableTimestamp, StringEnum, Timestamp, Uuid } from '../../http/schemas.ts';

export const IntensitySchema = StringEnum(['light', 'medium', 'strong']);
export const PatternSchema = StringEnum(['single', 'double', 'triple', 'heartbeat', 'long']);
export const TapStatusSchema = StringEnum(['sent', 'delivered', 'seen'], {
  description: 'sent: stored; delivered: a device of the recipient has it; seen: the recipient opened or felt it',
});

export const TapSchema = Type.Object(
  {
    id: Uuid(),
    cursor: Cursor("This tap's position in your log (the sender's and the recipient's logs number it differently)"),
    from: Uuid('Sender user id'),
    to: Uuid('Recipient user id'),
    intensity: IntensitySchema,
    pattern: PatternSchema,
    createdAt: Timestamp(),
    status: TapStatusSchema,
    deliveredAt: NullableTimestamp(),
    seenAt: NullableTimestamp(),
  },
  { title: 'Tap' },
);
export type TapView = Static<typeof TapSchema>;

export const SendTapBody = Type.Object(
  {
    id: Type.Optional(Uuid('Client-chosen id: resending the same tap with the same id is safe and creates it once')),
    to: Uuid('A partner of the sender'),
    intensity: IntensitySchema,
    pattern: PatternSchema,
  },
  { additionalProperties: false },
);
export type SendTapBody = Static<typeof SendTapBody>;

export const TapEnvelope = Type.Object({ tap: TapSchema });

export const ListTapsQuery = Type.Object(
  {
    with: Type.Optional(Uuid('Only taps exchanged with this user')),
    limit: Type.Integer({ minimum: 1, maximum: 100, default: 50 }),
    before: Type.Optional(Cursor('Older than this cursor (paging back), newest first')),
    after: Type.Optional(Cursor('Newer than this cursor (catching up), oldest first')),
  },
  { additionalProperties: false },
);
export type ListTapsQuery = Static<typeof ListTapsQuery>;

export const TapPageSchema = Type.Object({
  taps: Type.Array(TapSchema),
  nextCursor: Type.Union([Cursor(), Type.Null()], {
    description:
      'Paging back (no `after`): pass as `before` for the next page; null at the end. Catching up (`after`): pass as `after` next time; never null.',
  }),
  hasMore: Type.Boolean(),
});
export type TapPage = Static<typeof TapPageSchema>;

export const TapParams = Type.Object({ id: Uuid() });

export const AckStatusSchema = StringEnum(['delivered', 'seen']);
export const AckBody = Type.Object({ status: AckStatusSchema }, { additionalProperties: false });

export const DeliverySchema = Type.Object({
  deviceId: Uuid(),
  platform: StringEnum(['ios', 'watchos', 'web']),
  status: StringEnum(['pending', 'delivered', 'seen']),
  channel: Type.Union([StringEnum(['websocket', 'push', 'http']), Type.Null()], { description: 'How the tap reached the device' }),
  deliveredAt: NullableTimestamp(),
  seenAt: NullableTimestamp(),
  push: Type.Object({
    state: StringEnum(['waiting', 'sending', 'sent', 'failed', 'expired', 'skipped', 'not_needed']),
    trigger: StringEnum(['offline', 'no_ack'], {
      description: 'offline: no live socket when sent; no_ack: the socket did not ack in time',
    }),
    attempts: Type.Integer(),
    lastReason: Type.Union([Type.String(), Type.Null()], { description: 'APNs reason of the last attempt, or why it was skipped' }),
    apnsId: Type.Union([Type.String(), Type.Null()]),
    sentAt: NullableTimestamp(),
  }),
});

export const TapDetailSchema = Type.Object({
  tap: TapSchema,
  deliveries: Type.Array(DeliverySchema, { description: 'One entry per device of the recipient' }),
});
export type TapDetail = Static<typeof TapDetailSchema>;
