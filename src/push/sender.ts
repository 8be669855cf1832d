import type { Platform, PushEnvironment } from '../db/schema.ts';

/**
 * The boundary to a push provider (APNs). One attempt per call: retries,
 * backoff and durability belong to the delivery policy (delivery/push-dispatcher.ts),
 * which records every outcome per tap and device.
 */
export interface PushNotification {
  /** Device token, lowercase hex. */
  deviceToken: string;
  environment: PushEnvironment;
  /**
   * The kind of device the token belongs to. A watch app's token is valid
   * only under the watch app's bundle id, so the provider picks the topic
   * from this (docs/push.md); the topics themselves are provider configuration.
   */
  platform: Platform;
  /** UUID sent as apns-id and recorded with the delivery. */
  apnsId: string;
  /** After this instant (ms) APNs must not deliver it (apns-expiration). */
  expiresAt: number;
  /** apns-collapse-id: a burst from one partner shows as one notification. */
  collapseId?: string;
  /** The JSON payload, already serialised (at most 4096 bytes). */
  payload: string;
}

export type PushOutcome =
  /** APNs accepted it (200). */
  | { kind: 'accepted'; apnsId: string }
  /** The token is dead: 410 Unregistered (with Apple's timestamp, ms), 400 BadDeviceToken, ExpiredToken. */
  | { kind: 'invalid-token'; status: number; reason: string; timestamp?: number }
  /** Will never succeed as sent (DeviceTokenNotForTopic, PayloadTooLarge, BadCollapseId, TopicDisallowed...). */
  | { kind: 'permanent'; status: number; reason: string }
  /** Worth trying again later: 429, 5xx, timeouts, connection failures. */
  | { kind: 'retry'; status?: number; reason: string }
  /** Our credentials are wrong (InvalidProviderToken, MissingProviderToken...): an operator must act. */
  | { kind: 'misconfigured'; status: number; reason: string };

export interface PushSenderHealth {
  state: 'ok' | 'failing';
  /** The last configuration error, when failing. */
  reason?: string;
}

export interface PushSender {
  send(notification: PushNotification): Promise<PushOutcome>;
  health(): PushSenderHealth;
  close(): Promise<void>;
}
