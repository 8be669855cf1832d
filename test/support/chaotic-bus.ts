import type { BusEvent, BusListener, EventBus, Revocation, RevocationListener, Subscription } from '../../src/realtime/events.ts';
import { MemoryBus } from '../../src/realtime/memory-bus.ts';
import { createLogger } from '../../src/logger.ts';

/**
 * A bus that loses and reorders log entries on the way, as a cross-instance
 * bus may (a Redis restart, a slow subscriber): each entry event is dropped
 * with probability `loss`, and the rest arrive after a random delay of up to
 * `maxDelayMs`. Control events (sign-out, presence) pass unharmed. The one
 * fake in these tests, at the bus boundary.
 */
export class ChaoticBus implements EventBus {
  readonly #inner = new MemoryBus(createLogger({ logLevel: 'silent' }));
  readonly #loss: number;
  readonly #maxDelayMs: number;
  readonly #random: () => number;
  readonly #timers = new Set<NodeJS.Timeout>();
  dropped = 0;

  constructor(options: { loss: number; maxDelayMs: number; random?: () => number }) {
    this.#loss = options.loss;
    this.#maxDelayMs = options.maxDelayMs;
    this.#random = options.random ?? Math.random;
  }

  publish(userId: string, event: BusEvent): void {
    if (event.type !== 'entry') return this.#inner.publish(userId, event);
    if (this.#random() < this.#loss) {
      this.dropped++;
      return;
    }
    const timer = setTimeout(() => {
      this.#timers.delete(timer);
      this.#inner.publish(userId, event);
    }, this.#random() * this.#maxDelayMs);
    this.#timers.add(timer);
  }

  subscribe(userId: string, listener: BusListener): Subscription {
    return this.#inner.subscribe(userId, listener);
  }

  broadcast(event: Revocation): void {
    this.#inner.broadcast(event);
  }

  onBroadcast(listener: RevocationListener): () => void {
    return this.#inner.onBroadcast(listener);
  }

  async close(): Promise<void> {
    for (const timer of this.#timers) clearTimeout(timer);
    await this.#inner.close();
  }
}
