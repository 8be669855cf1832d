import type { LogMessage } from '../delivery/messages.ts';

export interface OutboxDeps {
  /** Entries of the user's log after `after`, oldest first (the database is the log). */
  read(after: number, limit: number): Promise<LogMessage[]>;
  /** Puts a frame on the socket. */
  send(frame: string, type: string): void;
  /** Waits until the socket has taken what was sent; false when it cannot, or the connection ended. */
  drained(): Promise<boolean>;
  /** The client cannot keep up with a replay. */
  tooSlow(): void;
  failed(error: unknown): void;
  /** Entries that live delivery did not bring and were read from the database instead (metrics). */
  repaired(count: number): void;
  /** Entries per database read. */
  pageSize: number;
  /** How long a hole revealed by a live entry may stay open before it is read from the database. */
  gapRepairMs: number;
  /** Live entries held while earlier ones are fetched; beyond this they are read again later. */
  maxHeld: number;
}

/**
 * Sends one user's log to one socket: every entry at most once, in cursor
 * order, with no holes, whatever the interleaving of replayed pages, live
 * entries, reconnects and entries lost or delayed on the way (docs/delivery.md).
 *
 * `next` is the position the device needs next. A live entry at `next` goes
 * out at once; a later one is held, and reveals that the entries before it
 * exist. Anything missing is read from the database, a page at a time, with
 * backpressure (the PDS's backfill-then-cut-over, as one loop): holding
 * entries is an optimisation only, since the database has them all.
 */
export class Outbox {
  readonly #deps: OutboxDeps;
  /** The position the device needs next; undefined until the connection knows where to start. */
  #next: number | undefined;
  /** The newest position known to exist. */
  #known = 0;
  /** Until the replay at connect reaches this position (hello.cursor), and then sync.done. */
  #syncTarget: number | undefined;
  readonly #held = new Map<number, { frame: string; type: string }>();
  #pumping = false;
  #stopped = false;

  constructor(deps: OutboxDeps) {
    this.#deps = deps;
  }

  /**
   * Starts after `from` (the newest position the device has), knowing the log
   * reaches `head`: replays up to there, then says sync.done.
   */
  start(from: number, head: number): void {
    this.#next = from + 1;
    this.#known = Math.max(this.#known, head);
    this.#syncTarget = head;
    for (const position of this.#held.keys()) if (position < this.#next) this.#held.delete(position);
    this.#pump();
  }

  /** A live entry, with its frame serialised once for every connection of the user. */
  offer(message: LogMessage, frame: string): void {
    if (this.#stopped) return;
    const position = Number(message.cursor);
    if (this.#next !== undefined && position < this.#next) return;
    this.#known = Math.max(this.#known, position);
    if (position === this.#next && !this.#pumping) {
      this.#emit(position, frame, message.type);
      this.#pump();
      return;
    }
    if (this.#held.size < this.#deps.maxHeld) this.#held.set(position, { frame, type: message.type });
    this.#pump();
  }

  /** The log reaches at least `head` (the periodic check): anything not sent yet is read. */
  knowHead(head: number): void {
    if (this.#stopped || head <= this.#known) return;
    this.#known = head;
    this.#pump();
  }

  stop(): void {
    this.#stopped = true;
    this.#held.clear();
  }

  /** The newest position sent (for the connection's close log). */
  get sentUpTo(): number {
    return (this.#next ?? 1) - 1;
  }

  #emit(position: number, frame: string, type: string): void {
    this.#deps.send(frame, type);
    this.#next = position + 1;
  }

  #pump(): void {
    if (this.#pumping || this.#stopped || this.#next === undefined) return;
    this.#pumping = true;
    void this.#catchUp()
      .catch((error: unknown) => this.#deps.failed(error))
      .finally(() => {
        this.#pumping = false;
        // Something may have arrived after the loop's last look.
        if (!this.#stopped && this.#next! <= this.#known) this.#pump();
      });
  }

  async #catchUp(): Promise<void> {
    let waited = false;
    while (!this.#stopped && this.#next! <= this.#known) {
      const next = this.#next!;
      const held = this.#held.get(next);
      if (held) {
        this.#held.delete(next);
        this.#emit(next, held.frame, held.type);
        waited = false;
        continue;
      }
      // Live, a hole usually means the entry is a moment behind on the bus: give it that moment.
      const replaying = this.#syncTarget !== undefined && next <= this.#syncTarget;
      if (!replaying && !waited) {
        waited = true;
        await new Promise((resolve) => setTimeout(resolve, this.#deps.gapRepairMs));
        continue;
      }
      if (!(await this.#deps.drained())) {
        if (!this.#stopped) this.#deps.tooSlow();
        return;
      }
      const page = await this.#deps.read(next - 1, this.#deps.pageSize);
      if (this.#stopped) return;
      if (page.length === 0) {
        // The log ends earlier than an entry suggested (a cursor from elsewhere): nothing more to fetch.
        this.#known = next - 1;
        break;
      }
      let sent = 0;
      for (const message of page) {
        const position = Number(message.cursor);
        if (position < this.#next!) continue;
        this.#held.delete(position);
        this.#emit(position, JSON.stringify(message), message.type);
        sent++;
      }
      if (!replaying) this.#deps.repaired(sent);
      this.#known = Math.max(this.#known, this.#next! - 1);
      waited = false;
    }
    if (!this.#stopped && this.#syncTarget !== undefined && this.#next! > this.#syncTarget) {
      const cursor = this.#syncTarget;
      this.#syncTarget = undefined;
      this.#deps.send(JSON.stringify({ type: 'sync.done', cursor: String(cursor) }), 'sync.done');
    }
  }
}
