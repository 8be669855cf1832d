import { Type } from 'typebox';
import { PLAIN_TEXT_PATTERN, Timestamp, Uuid } from '../../http/schemas.ts';
import { DeviceSchema } from '../devices/schemas.ts';
import { PairingSchema } from '../pairing/schemas.ts';

export const DisplayName = Type.Union([Type.String({ minLength: 1, maxLength: 40, pattern: PLAIN_TEXT_PATTERN }), Type.Null()], {
  description: 'How partners and push notifications name you ("Sam sent you a tap"); null to clear',
});

export const UserSchema = Type.Object({ id: Uuid(), displayName: Type.Union([Type.String(), Type.Null()]), createdAt: Timestamp() });

export const MeSchema = Type.Object({
  user: UserSchema,
  devices: Type.Array(DeviceSchema),
  pairings: Type.Array(PairingSchema),
});

export const UpdateMeBody = Type.Object({ displayName: DisplayName }, { additionalProperties: false });
