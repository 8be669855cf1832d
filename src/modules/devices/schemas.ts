import { Type, type Static } from 'typebox';
import { StringEnum, Timestamp, Uuid } from '../../http/schemas.ts';
import { PlatformSchema } from '../auth/schemas.ts';

export const DeviceSchema = Type.Object(
  {
    id: Uuid(),
    platform: PlatformSchema,
    name: Type.Union([Type.String(), Type.Null()]),
    createdAt: Timestamp(),
    current: Type.Boolean({ description: 'True for the device making the request' }),
    push: Type.Union(
      [
        Type.Object({
          provider: Type.Literal('apns'),
          environment: StringEnum(['sandbox', 'production']),
          valid: Type.Boolean({ description: 'False once APNs reported the token unregistered or bad; register a fresh one' }),
        }),
        Type.Null(),
      ],
      { description: 'The registered push token (never the token itself), or null' },
    ),
    pushTokenMovedAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()], {
      description:
        'When the push token this device had registered was registered by another device (a reinstall of the app, or another account holding the same token), so this device no longer gets pushes; null when that did not happen or this device has registered a token since. Registering the token again takes it back.',
    }),
  },
  { title: 'Device' },
);
export type DeviceView = Static<typeof DeviceSchema>;

export const DeviceParams = Type.Object({ id: Uuid() });

export const PushTokenBody = Type.Object(
  {
    provider: Type.Literal('apns'),
    token: Type.String({
      pattern: '^(?:[0-9a-fA-F]{2}){32,100}$',
      description: 'The APNs device token as hex (64 hex digits today; Apple may lengthen it)',
    }),
    environment: StringEnum(['sandbox', 'production'], {
      description: 'sandbox for development builds, production for TestFlight and the App Store',
    }),
  },
  { additionalProperties: false },
);
export type PushTokenBody = Static<typeof PushTokenBody>;
