import type { Clock } from '../clock.ts';
import type { Config } from '../config.ts';
import type { DatabaseHandle } from '../db/database.ts';
import type { Logger } from '../logger.ts';
import type { Metrics } from '../metrics.ts';
import type { AuthService } from '../modules/auth/service.ts';
import type { PairingService } from '../modules/pairing/service.ts';
import type { AckService } from '../modules/taps/acks.ts';
import type { TapService } from '../modules/taps/service.ts';
import type { ClientConnection } from './connection.ts';
import type { BusEvent } from './events.ts';
import type { ClientMessage } from './protocol.ts';
import type { ConnectionRegistry } from './registry.ts';

export type ParsedMessage = { ok: true; message: ClientMessage } | { ok: false; detail: string; ref?: string };

/** What a connection needs from the gateway and the services. */
export interface GatewayDeps {
  config: Config['realtime'];
  database: DatabaseHandle;
  clock: Clock;
  logger: Logger;
  metrics: Metrics;
  registry: ConnectionRegistry<ClientConnection>;
  auth: AuthService;
  taps: TapService;
  acks: AckService;
  pairing: PairingService;
  parse(value: unknown): ParsedMessage;
  /** Subscribes the connection to its user's events; returns the unsubscribe function. */
  subscribe(connection: ClientConnection): () => void;
  deliverOne(connection: ClientConnection, event: BusEvent): void;
  /** Tells the user's partners whether the user is online now. */
  announcePresence(userId: string, partners?: string[]): void;
}
