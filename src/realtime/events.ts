import type { LogMessage } from '../delivery/messages.ts';

/**
 * What reaches connected devices. Events are addressed to a user (every live
 * connection of that user receives them) and are plain JSON, so a
 * cross-instance bus can carry them unchanged. `entry` events are the tail of
 * the user's delivery log; the others are not logged: presence is a passing
 * state, and the last two close connections.
 */
export type DeviceRemovalReason = 'logout' | 'removed' | 'revoked';

export type BusEvent =
  | { type: 'entry'; message: LogMessage }
  | { type: 'presence'; userId: string; online: boolean }
  | { type: 'device.removed'; deviceId: string; reason: DeviceRemovalReason }
  | { type: 'user.deleted' };

export type BusListener = (event: BusEvent) => void;

/** What every instance must hear of, whoever is connected where: its caches forget the device or the account. */
export type Revocation = { type: 'device.removed'; userId: string; deviceId: string } | { type: 'user.deleted'; userId: string };
export type RevocationListener = (event: Revocation) => void;

/**
 * The one seam between features and delivery: in-process for one instance
 * (memory-bus.ts), through Redis for several (redis-bus.ts). Delivery is at
 * most once and may reorder; the delivery log repairs what is lost
 * (docs/delivery.md).
 */
export interface Subscription {
  /** Resolves once events published from now on will arrive (for Redis: once SUBSCRIBE was answered). */
  ready: Promise<void>;
  unsubscribe(): void;
}

export interface EventBus {
  publish(userId: string, event: BusEvent): void;
  subscribe(userId: string, listener: BusListener): Subscription;
  /** To every instance, this one included. */
  broadcast(event: Revocation): void;
  /** Returns the unsubscribe function. */
  onBroadcast(listener: RevocationListener): () => void;
  close(): Promise<void>;
}
