import type { DeliveryService } from '../delivery/service.ts';
import type { Logger } from '../logger.ts';
import type { ClientConnection } from './connection.ts';
import type { EventBus } from './events.ts';
import type { Presence } from './presence.ts';
import type { ConnectionRegistry } from './registry.ts';

interface Deps {
  connections: ConnectionRegistry<ClientConnection>;
  presence: Presence;
  bus: EventBus;
  delivery: DeliveryService;
  partnerIds: (userId: string) => Promise<string[]>;
  logger: Logger;
}

/**
 * What keeps live delivery honest beyond one event: the log check, and
 * presence announcements. Built with the context (not the HTTP app), so the
 * cross-instance parts can call them: the bus when its subscription is back
 * after Redis was away, presence when an instance died with users on it.
 */
export class Liveness {
  readonly #deps: Deps;
  #checking = false;

  constructor(deps: Deps) {
    this.#deps = deps;
  }

  /**
   * The log check: a live entry lost on the way to a connection is repaired
   * by the next entry, and the last one by this check, which compares every
   * connected user's log head with what their connections were sent (one
   * read per few hundred users). Runs periodically, and at once after the
   * bus lost messages.
   */
  checkLogs(): void {
    if (this.#checking) return;
    this.#checking = true;
    const { connections, delivery, logger } = this.#deps;
    void (async () => {
      const users = [...new Set([...connections.all()].map((connection) => connection.userId))];
      const heads = await delivery.heads(users);
      for (const connection of connections.all()) {
        const head = heads.get(connection.userId);
        if (head !== undefined) connection.knowHead(head);
      }
    })()
      .catch((error: unknown) => logger.warn({ err: error }, 'log check failed; trying again at the next one'))
      .finally(() => {
        this.#checking = false;
      });
  }

  /**
   * Tells the user's partners whether the user is online. Evaluated now, not
   * when the change happened: a quick connect and disconnect both announce
   * the final state.
   */
  announcePresence(userId: string, partners?: string[]): void {
    const { presence, bus, partnerIds, logger } = this.#deps;
    void (async () => {
      const ids = partners ?? (await partnerIds(userId));
      const online = (await presence.onlineUsers([userId])).has(userId);
      for (const partner of ids) bus.publish(partner, { type: 'presence', userId, online });
    })().catch((error: unknown) => logger.error({ err: error }, 'presence announcement failed'));
  }
}
