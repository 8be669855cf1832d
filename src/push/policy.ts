import type { DeliveryStatus, PushEnvironment, PushState } from '../db/schema.ts';

/** What deciding on a push for one device needs to know. */
export interface PushTarget {
  /** False when the device was removed after the tap was written. */
  deviceExists?: boolean;
  status: DeliveryStatus;
  tapCreatedAt: number;
  pushToken: string | null;
  pushEnvironment: PushEnvironment | null;
  tokenInvalidAt: number | null;
  lastReason: string | null;
}

export type PushVerdict = 'send' | { state: PushState; reason: string };

/**
 * The delivery policy's decision for a device that has not acked: push it,
 * or settle without a request (see docs/delivery.md). Made when the tap is
 * written for a device without a live socket, and when a hand-off falls due.
 */
export function pushVerdict(target: PushTarget, now: number, tapTtlMs: number, pushEnabled: boolean): PushVerdict {
  if (target.status !== 'pending') return { state: 'not_needed', reason: 'Acked' };
  if (target.deviceExists === false) return { state: 'skipped', reason: 'DeviceRemoved' };
  if (now >= target.tapCreatedAt + tapTtlMs) return { state: 'expired', reason: target.lastReason ?? 'TapExpired' };
  if (!pushEnabled) return { state: 'skipped', reason: 'PushDisabled' };
  if (target.pushToken === null || target.pushEnvironment === null) return { state: 'skipped', reason: 'NoPushToken' };
  if (target.tokenInvalidAt !== null) return { state: 'skipped', reason: 'TokenInvalid' };
  return 'send';
}
