import type { DeliveryStatus } from '../db/schema.ts';
import type { PairingView } from '../modules/pairing/schemas.ts';
import type { TapView } from '../modules/taps/schemas.ts';

/**
 * What the features announce to connected devices. Events are addressed to a
 * user (every live connection of that user receives them) and are plain JSON,
 * so a cross-instance bus can carry them unchanged.
 */
export type DeviceRemovalReason = 'logout' | 'removed' | 'revoked';

export type BusEvent =
  | { type: 'tap.created'; tap: TapView; originDeviceId: string | null }
  | { type: 'tap.status'; tapId: string; cursor: string; status: Exclude<DeliveryStatus, 'pending'>; at: string }
  | { type: 'presence'; userId: string; online: boolean }
  | { type: 'pairing.created'; pairing: PairingView }
  | { type: 'pairing.deleted'; pairingId: string; partnerId: string }
  | { type: 'device.removed'; deviceId: string; reason: DeviceRemovalReason }
  | { type: 'user.deleted' };

export type BusListener = (event: BusEvent) => void;

/** The one seam between features and delivery: in-process now, Redis when several instances run. */
export interface EventBus {
  publish(userId: string, event: BusEvent): void;
  /** Returns the unsubscribe function. */
  subscribe(userId: string, listener: BusListener): () => void;
  close(): Promise<void>;
}
