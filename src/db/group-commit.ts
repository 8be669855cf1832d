/**
 * Group commit: work submitted while a batch is being committed waits and is
 * committed together in the next batch, so N concurrent writers share one
 * fsync instead of paying one each. Batches are committed one at a time
 * unless `maxInFlight` allows more.
 *
 * The handler receives the whole batch and returns one outcome per item, in
 * order: a value, or an Error that belongs to that item alone. If the handler
 * itself throws (an infrastructure failure, or an item the handler did not
 * anticipate), every item of the batch is retried alone so that one bad item
 * cannot fail its neighbours.
 */
export type BatchHandler<I, O> = (items: I[]) => Promise<Array<O | Error>>;

interface Pending<I, O> {
  item: I;
  resolve: (value: O) => void;
  reject: (error: unknown) => void;
}

export interface GroupCommitOptions {
  /** Largest batch (default 256). */
  maxBatch?: number;
  /**
   * Batches committing at once (default 1). With 2, the next batch is already
   * queued at the database when the current one finishes, so a database
   * thread never waits for the event loop between batches.
   */
  maxInFlight?: number;
}

export class GroupCommit<I, O> {
  readonly #handler: BatchHandler<I, O>;
  readonly #maxBatch: number;
  readonly #maxInFlight: number;
  #queue: Array<Pending<I, O>> = [];
  #inFlight = 0;
  #scheduled = false;
  #idle: Array<() => void> = [];

  constructor(handler: BatchHandler<I, O>, options: GroupCommitOptions = {}) {
    this.#handler = handler;
    this.#maxBatch = options.maxBatch ?? 256;
    this.#maxInFlight = options.maxInFlight ?? 1;
  }

  submit(item: I): Promise<O> {
    return new Promise<O>((resolve, reject) => {
      this.#queue.push({ item, resolve, reject });
      this.#schedule();
    });
  }

  /** Resolves once everything submitted so far has been committed or failed. */
  drain(): Promise<void> {
    if (this.#inFlight === 0 && this.#queue.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  #schedule(): void {
    if (this.#scheduled || this.#inFlight >= this.#maxInFlight) return;
    this.#scheduled = true;
    // setImmediate lets every request that already arrived in this turn of the
    // event loop join the batch before it is committed.
    setImmediate(() => {
      this.#scheduled = false;
      this.#flush();
    });
  }

  #flush(): void {
    while (this.#queue.length > 0 && this.#inFlight < this.#maxInFlight) {
      const batch = this.#queue.splice(0, this.#maxBatch);
      this.#inFlight++;
      void this.#commit(batch).finally(() => {
        this.#inFlight--;
        // What queued up meanwhile has waited a whole commit already: go now.
        if (this.#queue.length > 0) this.#flush();
        else if (this.#inFlight === 0) for (const resolve of this.#idle.splice(0)) resolve();
      });
    }
  }

  async #commit(batch: Array<Pending<I, O>>): Promise<void> {
    let outcomes: Array<O | Error>;
    try {
      outcomes = await this.#handler(batch.map((p) => p.item));
    } catch (error) {
      if (batch.length === 1) {
        batch[0]!.reject(error);
        return;
      }
      for (const pending of batch) await this.#commit([pending]);
      return;
    }
    batch.forEach((pending, i) => {
      const outcome = outcomes[i];
      if (outcome instanceof Error) pending.reject(outcome);
      else pending.resolve(outcome as O);
    });
  }
}
