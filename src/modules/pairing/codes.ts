import { randomInt } from 'node:crypto';
import { AppError } from '../../errors.ts';

/** Crockford's base32: no I, L, O or U, so what is read aloud is typed right. */
const ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
export const CODE_LENGTH = 8;

/** A fresh code from the CSPRNG: 8 symbols, 40 bits. */
export function generateCode(): string {
  let code = '';
  for (let i = 0; i < CODE_LENGTH; i++) code += ALPHABET[randomInt(32)];
  return code;
}

/** How a code is shown: XXXX-XXXX. */
export const formatCode = (code: string): string => `${code.slice(0, 4)}-${code.slice(4)}`;

/**
 * What the user typed, as the canonical code: case-insensitive, hyphens and
 * spaces ignored, and the look-alikes Crockford decodes (I, L -> 1; O -> 0).
 */
export function normalizeCode(input: string): string {
  const code = input.toUpperCase().replace(/[\s-]/g, '').replace(/[IL]/g, '1').replace(/O/g, '0');
  if (code.length !== CODE_LENGTH || [...code].some((c) => !ALPHABET.includes(c))) {
    throw new AppError('INVALID_INPUT', `A pairing code is ${CODE_LENGTH} letters and digits, like 7K3M-Q9TX`);
  }
  return code;
}
