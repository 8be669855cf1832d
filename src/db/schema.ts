import type { Generated, Insertable, Kysely, Selectable, Transaction } from 'kysely';

/**
 * Table types. Times are integer milliseconds since the epoch (BIGINT on
 * PostgreSQL, INTEGER on SQLite); ids are UUID strings. Every user has a
 * delivery log (`log_entries`), whose positions are the cursors devices hold;
 * `users.log_head` is the newest position of that user's log.
 */
export interface UsersTable {
  id: string;
  display_name: string | null;
  created_at: number;
  /** The newest position in the user's log (0: empty). Its row lock orders appends (delivery/log-repo.ts). */
  log_head: Generated<number>;
}

export type Platform = 'ios' | 'watchos' | 'web';
export type PushEnvironment = 'sandbox' | 'production';

export interface DevicesTable {
  id: string;
  user_id: string;
  platform: Platform;
  name: string | null;
  created_at: number;
  push_token: string | null;
  push_environment: PushEnvironment | null;
  push_token_updated_at: number | null;
  /** Set when APNs said the token is no longer valid; cleared when a token is registered again. */
  push_token_invalid_at: number | null;
  push_token_invalid_reason: string | null;
}

export interface RefreshTokensTable {
  token_hash: string;
  device_id: string;
  created_at: number;
  expires_at: number;
  /** When this token was exchanged for its successor. */
  rotated_at: number | null;
  successor_hash: string | null;
}

export interface PairingCodesTable {
  id: string;
  code_hash: string;
  creator_id: string;
  created_at: number;
  expires_at: number;
  used_at: number | null;
  pairing_id: string | null;
}

export interface PairingsTable {
  id: string;
  /** The two partners, stored in ascending order so (user_a, user_b) is unique per couple. */
  user_a: string;
  user_b: string;
  created_at: number;
}

export type Intensity = 'light' | 'medium' | 'strong';
export type Pattern = 'single' | 'double' | 'triple' | 'heartbeat' | 'long';

export interface TapsTable {
  /** Internal key (delivery rows refer to it); not a cursor. */
  seq: Generated<number>;
  id: string;
  sender_id: string;
  sender_device_id: string | null;
  recipient_id: string;
  /** The tap's position in the sender's log and in the recipient's log. */
  sender_pos: number;
  recipient_pos: number;
  intensity: Intensity;
  pattern: Pattern;
  created_at: number;
  delivered_at: number | null;
  seen_at: number | null;
}

export type DeliveryStatus = 'pending' | 'delivered' | 'seen';
export type DeliveryChannel = 'websocket' | 'push' | 'http';
/**
 * Push hand-off of one tap to one device:
 * waiting (due at push_due_at) -> sending (claimed until push_due_at) -> sent | failed | expired | skipped;
 * not_needed when the device acked first. A retry puts it back to waiting.
 */
export type PushState = 'waiting' | 'sending' | 'sent' | 'failed' | 'expired' | 'skipped' | 'not_needed';
export type PushTrigger = 'offline' | 'no_ack';

export interface TapDeliveriesTable {
  /** The tap's internal key (taps.seq). */
  tap_seq: number;
  device_id: string;
  recipient_id: string;
  status: DeliveryStatus;
  channel: DeliveryChannel | null;
  delivered_at: number | null;
  seen_at: number | null;
  push_state: PushState;
  push_trigger: PushTrigger;
  push_due_at: number | null;
  push_attempts: number;
  push_last_reason: string | null;
  push_apns_id: string | null;
  push_sent_at: number | null;
}

export type LogEntryKind = 'tap' | 'tap.status' | 'pairing.created' | 'pairing.deleted';

/**
 * One entry of a user's delivery log: everything that user's devices must
 * see, in order. `pos` counts 1, 2, 3 ... per user, with no holes.
 */
export interface LogEntriesTable {
  user_id: string;
  pos: number;
  kind: LogEntryKind;
  /** The tap (tap, tap.status) or the pairing (pairing.*) the entry is about. */
  subject: string;
  /** The other user: the partner of the tap or pairing. */
  peer_id: string;
  /** tap.status: delivered | seen; pairing.deleted: unpaired | account_deleted. */
  detail: string | null;
  at: number;
}

export interface Database {
  users: UsersTable;
  log_entries: LogEntriesTable;
  devices: DevicesTable;
  refresh_tokens: RefreshTokensTable;
  pairing_codes: PairingCodesTable;
  pairings: PairingsTable;
  taps: TapsTable;
  tap_deliveries: TapDeliveriesTable;
}

export type Db = Kysely<Database>;
export type Trx = Transaction<Database>;
export type Executor = Db | Trx;

export type UserRow = Selectable<UsersTable>;
export type DeviceRow = Selectable<DevicesTable>;
export type PairingRow = Selectable<PairingsTable>;
export type PairingCodeRow = Selectable<PairingCodesTable>;
export type TapRow = Selectable<TapsTable>;
export type NewTap = Insertable<TapsTable>;
export type DeliveryRow = Selectable<TapDeliveriesTable>;
export type LogEntryRow = Selectable<LogEntriesTable>;
