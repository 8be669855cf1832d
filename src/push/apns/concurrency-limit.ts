/**
 * At most `limit` holders at a time; the rest wait in arrival order. Bounds
 * the streams opened on one APNs connection so a burst queues here, where it
 * is visible and cancellable, rather than inside the HTTP/2 session.
 */
export class ConcurrencyLimit {
  readonly #limit: number;
  readonly #waiting: Array<(granted: boolean) => void> = [];
  #active = 0;
  #closed = false;

  constructor(limit: number) {
    if (!Number.isInteger(limit) || limit < 1) throw new RangeError(`concurrency must be a positive integer, got ${limit}`);
    this.#limit = limit;
  }

  get active(): number {
    return this.#active;
  }

  get waiting(): number {
    return this.#waiting.length;
  }

  /** Resolves true once a slot is held (call `release` after), or false if closed first. */
  acquire(): Promise<boolean> {
    if (this.#closed) return Promise.resolve(false);
    if (this.#active < this.#limit) {
      this.#active += 1;
      return Promise.resolve(true);
    }
    return new Promise((resolve) => this.#waiting.push(resolve));
  }

  release(): void {
    const next = this.#waiting.shift();
    // The slot passes straight to the next waiter, so a newcomer cannot jump the queue.
    if (next) next(true);
    else this.#active = Math.max(0, this.#active - 1);
  }

  /** Refuses every waiter and any later acquire; holders keep their slots until they release. */
  close(): void {
    this.#closed = true;
    for (const resolve of this.#waiting.splice(0)) resolve(false);
  }
}
