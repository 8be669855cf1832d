import type { Redis } from 'ioredis';
import type { Logger } from '../logger.ts';
import type { Metrics } from '../metrics.ts';
import type { BusEvent, BusListener, EventBus, Revocation, RevocationListener, Subscription } from './events.ts';
import { MemoryBus } from './memory-bus.ts';

interface Deps {
  /** For PUBLISH: fails fast while Redis is unreachable (no offline queue). */
  publisher: Redis;
  /** In subscriber mode; a connection of its own. */
  subscriber: Redis;
  /** Namespaces the channels (several deployments, or tests, may share a Redis). */
  prefix: string;
  /** This process: it ignores what it published itself (already delivered in-process). */
  instanceId: string;
  logger: Logger;
  metrics: Metrics;
  /** Called when the subscription is back after Redis was away: the caller repairs what was missed. */
  onResubscribed: () => void;
}

interface Envelope {
  /** The publishing instance. */
  i: string;
  e: BusEvent | Revocation;
}

/**
 * The bus across instances, on Redis pub/sub: one channel per user, which an
 * instance subscribes to while it holds a connection of that user, and one
 * channel every instance subscribes to for revocations. An event is
 * delivered in-process at once (the same instance pays no round trip) and
 * published for the others.
 *
 * Pub/sub is at most once: while Redis is away, or a subscriber lags, events
 * are lost. That is the contract of EventBus (events.ts): the delivery log
 * repairs lost entries (a hole is read from the database, and the log check
 * runs as soon as the subscription is back), and the push fallback still
 * applies. docs/scaling.md has the reasoning and the measurements.
 */
export class RedisBus implements EventBus {
  readonly #deps: Deps;
  readonly #local: MemoryBus;
  readonly #userChannel: string;
  readonly #revocations: string;
  #lost = false;
  /** SUBSCRIBE commands not answered yet, by user. */
  readonly #pending = new Map<string, Promise<void>>();

  constructor(deps: Deps) {
    this.#deps = deps;
    this.#local = new MemoryBus(deps.logger);
    this.#userChannel = `${deps.prefix}u:`;
    this.#revocations = `${deps.prefix}revocations`;
    deps.subscriber.on('message', (channel: string, payload: string) => this.#receive(channel, payload));
    deps.subscriber.on('ready', () => void this.#resubscribe());
    deps.subscriber.on('close', () => {
      this.#lost = true;
    });
  }

  publish(userId: string, event: BusEvent): void {
    this.#local.publish(userId, event);
    this.#send(`${this.#userChannel}${userId}`, event);
  }

  subscribe(userId: string, listener: BusListener): Subscription {
    const first = !this.#local.hasListeners(userId);
    const local = this.#local.subscribe(userId, listener);
    const channel = `${this.#userChannel}${userId}`;
    // The first listener of a user subscribes the channel; later ones wait for that same SUBSCRIBE. Redis away:
    // nothing to wait for (the log check repairs what is missed once the subscription is back).
    if (first)
      this.#pending.set(
        userId,
        this.#deps.subscriber.subscribe(channel).then(
          () => undefined,
          () => undefined,
        ),
      );
    const ready = (this.#pending.get(userId) ?? Promise.resolve()).finally(() => this.#pending.delete(userId));
    return {
      ready,
      unsubscribe: () => {
        local.unsubscribe();
        if (!this.#local.hasListeners(userId)) this.#deps.subscriber.unsubscribe(channel).catch(() => undefined);
      },
    };
  }

  broadcast(event: Revocation): void {
    this.#local.broadcast(event);
    this.#send(this.#revocations, event);
  }

  onBroadcast(listener: RevocationListener): () => void {
    return this.#local.onBroadcast(listener);
  }

  /** Stops delivering; the connections belong to whoever made them. */
  async close(): Promise<void> {
    await this.#local.close();
  }

  #send(channel: string, event: BusEvent | Revocation): void {
    const payload = JSON.stringify({ i: this.#deps.instanceId, e: event } satisfies Envelope);
    this.#deps.metrics.busMessages.inc({ direction: 'out' });
    this.#deps.publisher.publish(channel, payload).catch(() => this.#deps.metrics.busPublishFailures.inc());
  }

  #receive(channel: string, payload: string): void {
    let envelope: Envelope;
    try {
      envelope = JSON.parse(payload) as Envelope;
    } catch {
      return;
    }
    if (envelope.i === this.#deps.instanceId) return;
    this.#deps.metrics.busMessages.inc({ direction: 'in' });
    if (channel === this.#revocations) return this.#local.broadcast(envelope.e as Revocation);
    if (channel.startsWith(this.#userChannel)) this.#local.publish(channel.slice(this.#userChannel.length), envelope.e as BusEvent);
  }

  /**
   * Subscribes (again) to every channel this instance needs: after a first
   * connection, and after Redis came back (what a channel carried meanwhile
   * is lost; the caller repairs it).
   */
  async #resubscribe(): Promise<void> {
    const channels = [this.#revocations, ...[...this.#local.users()].map((userId) => `${this.#userChannel}${userId}`)];
    try {
      for (let i = 0; i < channels.length; i += 1000) await this.#deps.subscriber.subscribe(...channels.slice(i, i + 1000));
    } catch (error) {
      this.#deps.logger.warn({ err: error }, 'resubscribing to the bus failed; trying again at the next reconnection');
      return;
    }
    if (this.#lost) {
      this.#lost = false;
      this.#deps.logger.info({ channels: channels.length }, 'bus subscription restored; repairing what was missed');
      this.#deps.onResubscribed();
    }
  }
}
