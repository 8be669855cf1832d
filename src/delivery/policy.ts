import type { DeliveryStatus, PushEnvironment, PushState } from '../db/schema.ts';

/** The delivery policy's settings (docs/delivery.md). */
export interface DeliveryPolicy {
  /** How long a live socket has to ack before the device is pushed. */
  ackWindowMs: number;
  /** A tap older than this is no longer pushed. */
  tapTtlMs: number;
  pushEnabled: boolean;
  /** How long a push claimed by this instance stays its own (see push-dispatcher.ts). */
  leaseMs: number;
}

/** How long a push claim is ours before another instance (or the next start) may take it over. */
export const PUSH_LEASE_MS = 30_000;

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
 * The decision for a device that has not acked: push it, or settle without a
 * request. Made when the tap is written for a device without a live socket,
 * and when a delivery's push falls due.
 */
export function pushVerdict(target: PushTarget, now: number, policy: Pick<DeliveryPolicy, 'tapTtlMs' | 'pushEnabled'>): PushVerdict {
  if (target.status !== 'pending') return { state: 'not_needed', reason: 'Acked' };
  if (target.deviceExists === false) return { state: 'skipped', reason: 'DeviceRemoved' };
  if (now >= target.tapCreatedAt + policy.tapTtlMs) return { state: 'expired', reason: target.lastReason ?? 'TapExpired' };
  if (!policy.pushEnabled) return { state: 'skipped', reason: 'PushDisabled' };
  if (target.pushToken === null || target.pushEnvironment === null) return { state: 'skipped', reason: 'NoPushToken' };
  if (target.tokenInvalidAt !== null) return { state: 'skipped', reason: 'TokenInvalid' };
  return 'send';
}

/** How a new delivery's push starts (docs/delivery.md#the-policy-per-recipient-device). */
export type FirstPush =
  /** A live socket has the ack window; push takes over when it ends. */
  | { state: 'waiting'; trigger: 'no_ack'; dueAt: number }
  /** No live socket: push now (claimed in the tap's transaction, with a lease). */
  | { state: 'sending'; trigger: 'offline'; dueAt: number }
  /** Nothing to push to, or push is off: settled at once. */
  | { state: PushState; trigger: 'offline' | 'no_ack'; reason: string };

export function firstPush(
  device: Pick<PushTarget, 'pushToken' | 'pushEnvironment' | 'tokenInvalidAt'>,
  online: boolean,
  tapCreatedAt: number,
  policy: DeliveryPolicy,
): FirstPush {
  if (online) {
    if (!policy.pushEnabled) return { state: 'skipped', trigger: 'no_ack', reason: 'PushDisabled' };
    return { state: 'waiting', trigger: 'no_ack', dueAt: tapCreatedAt + policy.ackWindowMs };
  }
  const verdict = pushVerdict({ ...device, status: 'pending', tapCreatedAt, lastReason: null }, tapCreatedAt, policy);
  if (verdict === 'send') return { state: 'sending', trigger: 'offline', dueAt: tapCreatedAt + policy.leaseMs };
  return { ...verdict, trigger: 'offline' };
}
