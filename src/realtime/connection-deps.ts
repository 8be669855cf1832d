import type { Clock } from '../clock.ts';
import type { Config } from '../config.ts';
import type { DeliveryStatus } from '../db/schema.ts';
import type { LogMessage } from '../delivery/messages.ts';
import type { AckStatus } from '../delivery/write-batch.ts';
import type { Logger } from '../logger.ts';
import type { Metrics } from '../metrics.ts';
import type { Principal } from '../modules/auth/service.ts';
import type { SendTapBody, TapView } from '../modules/taps/schemas.ts';
import type { ClientConnection } from './connection.ts';
import type { BusEvent, Subscription } from './events.ts';
import type { Presence } from './presence.ts';
import type { ClientMessage } from './protocol.ts';
import type { ConnectionRegistry } from './registry.ts';
import type { ConnectionSnapshot } from './snapshot.ts';

export type ParsedMessage = { ok: true; message: ClientMessage } | { ok: false; detail: string; ref?: string };

type Device = { userId: string; deviceId: string };

/** What a connection calls: the gateway builds it once for every connection (gateway.ts). */
export interface ConnectionDeps {
  config: Config['realtime'];
  clock: Clock;
  logger: Logger;
  metrics: Metrics;
  registry: ConnectionRegistry<ClientConnection>;
  presence: Presence;
  parse(value: unknown): ParsedMessage;
  /** Verifies an access token and that its device still exists. */
  authenticate(token: string): Promise<Principal>;
  snapshot(device: Device): Promise<ConnectionSnapshot>;
  readLog(userId: string, after: number, limit: number): Promise<LogMessage[]>;
  sendTap(device: Device, body: SendTapBody): Promise<{ tap: TapView; created: boolean }>;
  ack(device: Device, tapId: string, status: AckStatus): Promise<{ advanced: boolean; status: DeliveryStatus }>;
  /** Subscribes the connection to its user's events. */
  subscribe(userId: string, deliver: (event: BusEvent, frame: () => string) => void): Subscription;
  /** Tells the user's partners whether the user is online now. */
  announcePresence(userId: string, partners?: string[]): void;
}
