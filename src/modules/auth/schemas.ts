import { Type, type Static } from 'typebox';
import { PLAIN_TEXT_PATTERN, StringEnum, Timestamp, Uuid } from '../../http/schemas.ts';

export const PlatformSchema = StringEnum(['ios', 'watchos', 'web'], { description: 'What kind of device this is' });
export const DeviceName = Type.String({
  minLength: 1,
  maxLength: 64,
  pattern: PLAIN_TEXT_PATTERN,
  description: 'Shown to the user, e.g. "Sam\'s Watch"',
});

export const NewDeviceBody = Type.Object({ platform: PlatformSchema, name: Type.Optional(DeviceName) }, { additionalProperties: false });
export type NewDeviceBody = Static<typeof NewDeviceBody>;

export const RefreshBody = Type.Object({ refreshToken: Type.String({ minLength: 1, maxLength: 4096 }) }, { additionalProperties: false });

export const SessionSchema = Type.Object(
  {
    userId: Uuid(),
    deviceId: Uuid(),
    accessToken: Type.String({ description: 'Bearer token for every authenticated call and the WebSocket' }),
    accessTokenExpiresAt: Timestamp(),
    refreshToken: Type.String({ description: 'Single-use: exchange it at /v1/auth/refresh for a new pair; store it in the Keychain' }),
    refreshTokenExpiresAt: Timestamp(),
  },
  { title: 'Session' },
);
export type SessionView = Static<typeof SessionSchema>;
