import type { ConnectionRegistry, RegisteredConnection } from './registry.ts';

/**
 * Who is connected right now, across every instance. A user is online while
 * any of their devices holds a live socket anywhere. Asynchronous because a
 * shared implementation (Redis, several instances) answers over the network;
 * the in-process one answers from this instance's connection registry.
 */
export interface Presence {
  /** A connection of this instance opened (it is in the registry); resolves whether its user just came online. */
  opened(connection: RegisteredConnection): Promise<boolean>;
  /** A connection of this instance closed (it left the registry); resolves whether its user just went offline. */
  closed(connection: RegisteredConnection): Promise<boolean>;
  /** Which of these users are online. */
  onlineUsers(userIds: string[]): Promise<Set<string>>;
  /** The devices of a user that hold a live socket. */
  onlineDevices(userId: string): Promise<string[]>;
  close(): Promise<void>;
}

/** One instance: the registry is the whole truth. */
export class LocalPresence implements Presence {
  readonly #registry: ConnectionRegistry;

  constructor(registry: ConnectionRegistry) {
    this.#registry = registry;
  }

  async opened(connection: RegisteredConnection): Promise<boolean> {
    return this.#registry.connectionsOfUser(connection.userId).length === 1;
  }

  async closed(connection: RegisteredConnection): Promise<boolean> {
    return !this.#registry.isUserOnline(connection.userId);
  }

  async onlineUsers(userIds: string[]): Promise<Set<string>> {
    return new Set(userIds.filter((id) => this.#registry.isUserOnline(id)));
  }

  async onlineDevices(userId: string): Promise<string[]> {
    return this.#registry.onlineDevices(userId);
  }

  async close(): Promise<void> {}
}
