import { Type, type Static } from 'typebox';
import { StringEnum, Timestamp, Uuid } from '../../http/schemas.ts';

export const PartnerSchema = Type.Object({
  userId: Uuid(),
  displayName: Type.Union([Type.String(), Type.Null()]),
  online: Type.Boolean({ description: 'Whether any device of the partner holds a live socket' }),
});

export const PairingSchema = Type.Object({ id: Uuid(), partner: PartnerSchema, createdAt: Timestamp() }, { title: 'Pairing' });
export type PairingView = Static<typeof PairingSchema>;

export const CodeInput = Type.String({
  minLength: 1,
  maxLength: 32,
  description: 'The code as shown (XXXX-XXXX); case, hyphens and spaces do not matter',
});

export const PairingCodeSchema = Type.Object({
  code: Type.String({ description: 'Show it as is; it is valid once', examples: ['7K3M-Q9TX'] }),
  expiresAt: Timestamp(),
});

export const PairingCodeStatusSchema = Type.Object({
  status: StringEnum(['pending', 'used', 'expired']),
  expiresAt: Timestamp(),
  pairing: Type.Optional(PairingSchema),
});
export type PairingCodeStatus = Static<typeof PairingCodeStatusSchema>;

export const CodeParams = Type.Object({ code: CodeInput });
export const PairingParams = Type.Object({ id: Uuid() });
export const RedeemBody = Type.Object({ code: CodeInput }, { additionalProperties: false });
