import type { Logger } from '../logger.ts';
import type { BusEvent, BusListener, EventBus } from './events.ts';

/** The single-instance bus: a map from user id to that user's live listeners. */
export class MemoryBus implements EventBus {
  readonly #listeners = new Map<string, Set<BusListener>>();
  readonly #logger: Logger;

  constructor(logger: Logger) {
    this.#logger = logger;
  }

  publish(userId: string, event: BusEvent): void {
    const listeners = this.#listeners.get(userId);
    if (!listeners) return;
    for (const listener of listeners) {
      try {
        listener(event);
      } catch (error) {
        this.#logger.error({ err: error, event: event.type }, 'bus listener failed');
      }
    }
  }

  subscribe(userId: string, listener: BusListener): () => void {
    let listeners = this.#listeners.get(userId);
    if (!listeners) {
      listeners = new Set();
      this.#listeners.set(userId, listeners);
    }
    listeners.add(listener);
    return () => {
      const current = this.#listeners.get(userId);
      if (!current) return;
      current.delete(listener);
      if (current.size === 0) this.#listeners.delete(userId);
    };
  }

  async close(): Promise<void> {
    this.#listeners.clear();
  }
}
