import assert from 'node:assert/strict';
import type { User } from './clients.ts';
import { WsClient, type Frame } from './ws-client.ts';

/** The types of the messages that are entries of a user's log. */
export const LOG_TYPES = new Set(['tap', 'tap.status', 'tap.deleted', 'pairing.created', 'pairing.deleted']);

/** What an entry is about, whatever its position: comparable with what a model expects. */
export function entryKey(frame: Frame): string {
  switch (frame.type) {
    case 'tap':
      return `tap:${(frame.tap as { id: string }).id}`;
    case 'tap.status':
      return `status:${String(frame.tapId)}:${String(frame.status)}`;
    case 'tap.deleted':
      return `deleted:${String(frame.tapId)}`;
    case 'pairing.created':
      return `paired:${(frame.pairing as { id: string }).id}`;
    default:
      return `unpaired:${String(frame.pairingId)}:${String(frame.reason)}`;
  }
}

/**
 * A device that does exactly what docs/websocket.md tells app developers:
 * keep the newest cursor it processed, reconnect with it, take each entry
 * whose cursor is the next one, ignore repeats. It also records what the
 * service promises never to do: within one connection an entry twice, out of
 * order, or after a hole.
 */
export class LogDevice {
  /** The newest cursor processed (the recipe's one stored number). */
  cursor = 0;
  /** Every entry processed, by cursor. */
  readonly entries = new Map<number, string>();
  /** Broken promises, described. */
  readonly violations: string[] = [];
  ws: WsClient | undefined;
  readonly user: User;
  readonly name: string;
  #connections = 0;

  constructor(name: string, user: User) {
    this.name = name;
    this.user = user;
  }

  get connected(): boolean {
    return this.ws !== undefined && this.ws.socket.readyState === this.ws.socket.OPEN;
  }

  /**
   * Connects with the stored cursor. With `dropAfter`, the connection is cut
   * abruptly once that many frames arrived (mid-replay, typically); otherwise
   * it waits until caught up (sync.done).
   */
  async connect(wsUrl: string, options: { dropAfter?: number } = {}): Promise<void> {
    // One connection at a time, as the recipe has it.
    this.drop();
    const id = ++this.#connections;
    const from = this.cursor;
    const ws = await WsClient.connect(`${wsUrl}?cursor=${from}`, this.user.accessToken, { waitForHello: false });
    this.ws = ws;
    let expected: number | undefined;
    let frames = 0;
    ws.onFrame((frame) => {
      frames++;
      if (frame.type === 'hello') expected = Math.min(from, Number(frame.cursor)) + 1;
      else if (LOG_TYPES.has(frame.type)) this.#take(frame, id, expected);
      if (LOG_TYPES.has(frame.type) && expected !== undefined) expected = Number(frame.cursor) + 1;
      if (options.dropAfter !== undefined && frames >= options.dropAfter) ws.drop();
    });
    const done = ws.next('sync.done', () => true, 10_000);
    if (options.dropAfter === undefined) await done;
    else await Promise.race([done, ws.closed]).catch(() => undefined);
    done.catch(() => undefined);
  }

  drop(): void {
    this.ws?.drop();
    this.ws = undefined;
  }

  /** Connected, and everything the log held when asked is here. */
  async catchUp(wsUrl: string): Promise<void> {
    this.drop();
    await this.connect(wsUrl);
  }

  #take(frame: Frame, connection: number, expected: number | undefined): void {
    const position = Number(frame.cursor);
    if (expected === undefined) this.violations.push(`connection ${connection}: ${frame.type} ${position} before hello`);
    else if (position !== expected)
      this.violations.push(`connection ${connection}: ${frame.type} at ${position} where ${expected} was next`);
    if (position <= this.cursor) return;
    if (position !== this.cursor + 1) this.violations.push(`${this.name}: hole before ${position} (had ${this.cursor})`);
    this.entries.set(position, entryKey(frame));
    this.cursor = position;
  }

  /** Waits until the live connection has delivered up to `cursor` (a lost last entry included). */
  async reaches(cursor: number, context: string, timeoutMs = 3000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.cursor < cursor && this.connected) {
      assert.ok(Date.now() < deadline, `${this.name} is stuck at ${this.cursor} of ${cursor} while connected: ${context}`);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }

  assertSees(log: string[], context: string): void {
    assert.deepEqual(this.violations, [], `${this.name}: ${context}`);
    assert.deepEqual(
      [...this.entries.entries()].sort(([a], [b]) => a - b).map(([, key]) => key),
      log,
      `${this.name} holds its user's whole log, in order: ${context}`,
    );
  }
}
