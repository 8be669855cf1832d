import type { Logger } from '../logger.ts';
import type { BusEvent, BusListener, EventBus, Revocation, RevocationListener, Subscription } from './events.ts';

/** The single-instance bus: a map from user id to that user's live listeners. Redis's bus keeps one for local delivery too. */
export class MemoryBus implements EventBus {
  readonly #listeners = new Map<string, Set<BusListener>>();
  readonly #broadcastListeners = new Set<RevocationListener>();
  readonly #logger: Logger;

  constructor(logger: Logger) {
    this.#logger = logger;
  }

  publish(userId: string, event: BusEvent): void {
    const listeners = this.#listeners.get(userId);
    if (!listeners) return;
    for (const listener of listeners) this.#call(() => listener(event), event.type);
  }

  subscribe(userId: string, listener: BusListener): Subscription {
    let listeners = this.#listeners.get(userId);
    if (!listeners) {
      listeners = new Set();
      this.#listeners.set(userId, listeners);
    }
    listeners.add(listener);
    return {
      ready: Promise.resolve(),
      unsubscribe: () => {
        const current = this.#listeners.get(userId);
        if (!current) return;
        current.delete(listener);
        if (current.size === 0) this.#listeners.delete(userId);
      },
    };
  }

  broadcast(event: Revocation): void {
    for (const listener of this.#broadcastListeners) this.#call(() => listener(event), event.type);
  }

  onBroadcast(listener: RevocationListener): () => void {
    this.#broadcastListeners.add(listener);
    return () => this.#broadcastListeners.delete(listener);
  }

  /** Whether any listener of this instance is subscribed to the user. */
  hasListeners(userId: string): boolean {
    return this.#listeners.has(userId);
  }

  /** The users with listeners on this instance. */
  users(): IterableIterator<string> {
    return this.#listeners.keys();
  }

  async close(): Promise<void> {
    this.#listeners.clear();
    this.#broadcastListeners.clear();
  }

  #call(deliver: () => void, type: string): void {
    try {
      deliver();
    } catch (error) {
      this.#logger.error({ err: error, event: type }, 'bus listener failed');
    }
  }
}
