import { Type, type Static } from 'typebox';
import { LogMessages } from '../delivery/messages.ts';
import { Cursor, StringEnum, Timestamp, Uuid } from '../http/schemas.ts';
import { ERROR_CATALOG, type ErrorCode } from '../errors.ts';
import { AckStatusSchema, IntensitySchema, PatternSchema, TapSchema } from '../modules/taps/schemas.ts';

/**
 * The WebSocket protocol, as schemas. The server validates every client
 * message against these, and docs/asyncapi.json is generated from them.
 */
const Ref = Type.Optional(Type.String({ minLength: 1, maxLength: 64, description: 'Client-chosen correlation id, echoed in the reply' }));
const strict = { additionalProperties: false } as const;

export const ClientMessages = {
  auth: Type.Object(
    {
      type: Type.Literal('auth'),
      token: Type.String({ minLength: 1, maxLength: 4096 }),
      cursor: Type.Optional(Cursor('First authentication only: replay your log after this cursor before anything live')),
      ref: Ref,
    },
    {
      ...strict,
      title: 'auth',
      description:
        'Authenticate (first message, when no Authorization header was sent; answered by hello) or renew the access token in-band (answered by auth.ok)',
    },
  ),
  'tap.send': Type.Object(
    {
      type: Type.Literal('tap.send'),
      id: Type.Optional(Uuid('Client-chosen tap id; resending with the same id is safe')),
      to: Uuid(),
      intensity: IntensitySchema,
      pattern: PatternSchema,
      ref: Ref,
    },
    { ...strict, title: 'tap.send', description: 'Send a tap; answered by tap.sent or error' },
  ),
  ack: Type.Object(
    { type: Type.Literal('ack'), tapId: Uuid(), status: AckStatusSchema, ref: Ref },
    {
      ...strict,
      title: 'ack',
      description:
        'This device has the tap (delivered) or the person felt/opened it (seen); answered by ack.ok when it carries a ref, error when refused',
    },
  ),
  ping: Type.Object(
    { type: Type.Literal('ping'), ref: Ref },
    { ...strict, title: 'ping', description: 'Application-level ping; answered by pong' },
  ),
} as const;

export type ClientMessageType = keyof typeof ClientMessages;
export type ClientMessage = { [K in ClientMessageType]: Static<(typeof ClientMessages)[K]> }[ClientMessageType];

const PartnerPresence = Type.Object({ userId: Uuid(), online: Type.Boolean() });

export const ServerMessages = {
  hello: Type.Object(
    {
      type: Type.Literal('hello'),
      userId: Uuid(),
      deviceId: Uuid(),
      cursor: Cursor('The newest position of your log right now: a replay runs up to here, then sync.done'),
      heartbeatSeconds: Type.Integer({ description: 'The server pings this often; a peer silent for two intervals is dropped' }),
      tokenExpiresAt: Timestamp('Renew in-band with an auth message before this'),
      partners: Type.Array(PartnerPresence),
      ref: Ref,
    },
    { title: 'hello', description: 'Sent once the connection is authenticated (with the ref of the auth message, if any)' },
  ),
  ...LogMessages,
  'sync.done': Type.Object(
    { type: Type.Literal('sync.done'), cursor: Cursor('Everything up to here has been sent: you are caught up, and live from now on') },
    {
      title: 'sync.done',
      description: 'Once per connection, after the entries up to hello.cursor (right after hello when there are none)',
    },
  ),
  'tap.sent': Type.Object(
    {
      type: Type.Literal('tap.sent'),
      tap: TapSchema,
      created: Type.Boolean({ description: 'False for a resend of an existing id' }),
      ref: Ref,
    },
    { title: 'tap.sent', description: 'Reply to tap.send: the tap is stored. Its entry in your log also arrives, as a tap message.' },
  ),
  'ack.ok': Type.Object(
    {
      type: Type.Literal('ack.ok'),
      tapId: Uuid(),
      status: AckStatusSchema,
      advanced: Type.Boolean({ description: 'False when this device had already acked as far' }),
      ref: Ref,
    },
    { title: 'ack.ok', description: 'Reply to an ack that carried a ref: it is recorded' },
  ),
  presence: Type.Object(
    { type: Type.Literal('presence'), userId: Uuid(), online: Type.Boolean() },
    {
      title: 'presence',
      description: 'A partner came online (first device connected) or went offline (last device disconnected); not part of the log',
    },
  ),
  'auth.ok': Type.Object(
    { type: Type.Literal('auth.ok'), tokenExpiresAt: Timestamp(), ref: Ref },
    { title: 'auth.ok', description: 'Reply to an in-band token renewal' },
  ),
  pong: Type.Object({ type: Type.Literal('pong'), ref: Ref }, { title: 'pong' }),
  error: Type.Object(
    {
      type: Type.Literal('error'),
      code: StringEnum(Object.keys(ERROR_CATALOG) as ErrorCode[]),
      detail: Type.String(),
      ref: Ref,
      tapId: Type.Optional(Uuid('For a refused ack: the tap it named')),
    },
    { title: 'error', description: 'A message was refused; the connection stays open' },
  ),
} as const;

export type ServerMessage = { [K in keyof typeof ServerMessages]: Static<(typeof ServerMessages)[K]> }[keyof typeof ServerMessages];

/** Close codes, documented in docs/websocket.md. */
export const CloseCodes = {
  NORMAL: { code: 1000, reason: 'bye' },
  POLICY: { code: 1008, reason: 'message rate exceeded' },
  TOO_BIG: { code: 1009, reason: 'message too big' },
  INTERNAL: { code: 1011, reason: 'internal error' },
  RESTART: { code: 1012, reason: 'service restart' },
  AUTH_FAILED: { code: 4401, reason: 'authentication failed' },
  TOKEN_EXPIRED: { code: 4402, reason: 'access token expired' },
  DEVICE_REVOKED: { code: 4403, reason: 'device signed out' },
  SLOW_CONSUMER: { code: 4408, reason: 'too slow: reconnect with your cursor' },
  REPLACED: { code: 4409, reason: 'replaced by a newer connection' },
  ACCOUNT_DELETED: { code: 4410, reason: 'account deleted' },
} as const;
export type CloseCode = (typeof CloseCodes)[keyof typeof CloseCodes];

/** Query string of the upgrade request. */
export const ConnectQuery = Type.Object(
  { cursor: Type.Optional(Cursor('Replay your log after this cursor right after hello, before anything live (then sync.done)')) },
  { additionalProperties: false },
);
