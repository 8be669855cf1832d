import type { Intensity, Pattern } from '../db/schema.ts';
import type { TapView } from '../modules/taps/schemas.ts';

/** APNs refuses payloads over 4 KiB. */
export const MAX_PAYLOAD_BYTES = 4096;

const PATTERN_WORDS: Record<Pattern, string> = {
  single: 'tap',
  double: 'double tap',
  triple: 'triple tap',
  heartbeat: 'heartbeat',
  long: 'long tap',
};

/** "Sam sent you a strong double tap" */
export function alertBody(senderName: string | null, intensity: Intensity, pattern: Pattern): string {
  return `${senderName ?? 'Your partner'} sent you a ${intensity} ${PATTERN_WORDS[pattern]}`;
}

/**
 * The notification for one tap; its format is a contract with the apps,
 * documented in docs/push.md. `navi.tap` is the same object as the
 * WebSocket's `tap` message, so the app has one code path to play it.
 */
export function tapPayload(tap: TapView, senderName: string | null): string {
  const payload = {
    aps: {
      alert: { body: alertBody(truncate(senderName), tap.intensity, tap.pattern) },
      sound: 'default',
      'interruption-level': 'time-sensitive',
      'thread-id': `partner-${tap.from}`,
      'mutable-content': 1,
    },
    navi: { v: 1, tap },
  };
  return JSON.stringify(payload);
}

/** Display names are short already; this only guards the 4 KiB budget. */
function truncate(name: string | null): string | null {
  return name !== null && name.length > 64 ? `${name.slice(0, 63)}…` : name;
}
