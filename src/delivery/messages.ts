import { Type, type Static } from 'typebox';
import { toIso } from '../clock.ts';
import type { LogEntryRow, TapRow } from '../db/schema.ts';
import { Cursor, StringEnum, Timestamp, Uuid } from '../http/schemas.ts';
import { PairingSchema, type PairingView } from '../modules/pairing/schemas.ts';
import { AckStatusSchema, TapSchema } from '../modules/taps/schemas.ts';
import { toTapView } from '../modules/taps/view.ts';

/**
 * The delivery log as devices see it: one message per entry, each with the
 * entry's `cursor`. The same shapes go over the WebSocket (live and replayed)
 * and over HTTP (GET /v1/log).
 */
const entry = { cursor: Cursor("This entry's position in your log: the previous entry you received has cursor - 1") };

export const PairingEndReasonSchema = StringEnum(['unpaired', 'account_deleted'], {
  description: 'unpaired: one of you ended it; account_deleted: the partner deleted their account, and with it every tap between you',
});

export const LogMessages = {
  tap: Type.Object(
    { type: Type.Literal('tap'), ...entry, tap: TapSchema },
    { title: 'tap', description: 'A tap to you (play it and ack it) or from you (show it in history)' },
  ),
  'tap.status': Type.Object(
    { type: Type.Literal('tap.status'), ...entry, tapId: Uuid(), status: AckStatusSchema, at: Timestamp() },
    {
      title: 'tap.status',
      description:
        'Receipt for a tap you sent: a device of your partner has it (delivered), or they felt it (seen); seen implies delivered',
    },
  ),
  'tap.deleted': Type.Object(
    { type: Type.Literal('tap.deleted'), ...entry, tapId: Uuid() },
    {
      title: 'tap.deleted',
      description:
        'Replay only: this entry was a tap that no longer exists (its other party deleted their account); remove it if you have it',
    },
  ),
  'pairing.created': Type.Object(
    { type: Type.Literal('pairing.created'), ...entry, pairing: PairingSchema },
    { title: 'pairing.created', description: 'You have a new partner' },
  ),
  'pairing.deleted': Type.Object(
    { type: Type.Literal('pairing.deleted'), ...entry, pairingId: Uuid(), partnerId: Uuid(), reason: PairingEndReasonSchema },
    { title: 'pairing.deleted', description: 'A pairing ended; taps to that partner are refused from now on' },
  ),
} as const;

export type LogMessageType = keyof typeof LogMessages;
export type LogMessage = { [K in LogMessageType]: Static<(typeof LogMessages)[K]> }[LogMessageType];
export const LogMessageSchema = Type.Union(
  [LogMessages.tap, LogMessages['tap.status'], LogMessages['tap.deleted'], LogMessages['pairing.created'], LogMessages['pairing.deleted']],
  { title: 'LogEntry' },
);

export type PairingEndReason = Static<typeof PairingEndReasonSchema>;

/** What rendering an entry may need beyond the row: the tap it names, and for pairing.created the partner's view. */
export interface EntryContext {
  tap?: TapRow | null;
  partner?: PairingView['partner'];
}

/** One log entry as the device of its user sees it. */
export function toLogMessage(row: LogEntryRow, context: EntryContext = {}): LogMessage {
  const cursor = String(row.pos);
  switch (row.kind) {
    case 'tap':
      return context.tap
        ? { type: 'tap', cursor, tap: toTapView(context.tap, row.user_id) }
        : { type: 'tap.deleted', cursor, tapId: row.subject };
    case 'tap.status':
      return { type: 'tap.status', cursor, tapId: row.subject, status: row.detail as 'delivered' | 'seen', at: toIso(row.at) };
    case 'pairing.created':
      return {
        type: 'pairing.created',
        cursor,
        pairing: {
          id: row.subject,
          partner: context.partner ?? { userId: row.peer_id, displayName: null, online: false },
          createdAt: toIso(row.at),
        },
      };
    case 'pairing.deleted':
      return { type: 'pairing.deleted', cursor, pairingId: row.subject, partnerId: row.peer_id, reason: row.detail as PairingEndReason };
  }
}
