import { createHash, createHmac, randomBytes, randomFillSync } from 'node:crypto';

/**
 * UUID version 7 (RFC 9562): time-ordered, so primary-key inserts stay at the
 * right edge of the index. 48 bits of milliseconds, then 74 random bits.
 */
export function uuidv7(nowMs: number = Date.now()): string {
  const bytes = randomFillSync(new Uint8Array(16));
  let ms = nowMs;
  for (let i = 5; i >= 0; i--) {
    bytes[i] = ms % 256;
    ms = Math.floor(ms / 256);
  }
  bytes[6] = 0x70 | (bytes[6]! & 0x0f);
  bytes[8] = 0x80 | (bytes[8]! & 0x3f);
  const hex = Buffer.from(bytes).toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

export const randomToken = (bytes = 32): string => randomBytes(bytes).toString('base64url');

export const sha256 = (value: string): string => createHash('sha256').update(value).digest('base64url');

export const hmacSha256 = (key: string, value: string): string => createHmac('sha256', key).update(value).digest('base64url');
