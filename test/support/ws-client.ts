import { WebSocket } from 'ws';

export type Frame = { type: string } & Record<string, unknown>;

/**
 * A real WebSocket client that records every frame, so a test can wait for
 * the one it expects and look at what came before.
 */
export class WsClient {
  readonly socket: WebSocket;
  readonly frames: Frame[] = [];
  readonly closed: Promise<{ code: number; reason: string }>;
  #waiters: Array<{ match: (f: Frame) => boolean; resolve: (f: Frame) => void; from: number }> = [];
  #listeners: Array<(frame: Frame) => void> = [];

  private constructor(socket: WebSocket) {
    this.socket = socket;
    this.closed = new Promise((resolve) => socket.on('close', (code, reason) => resolve({ code, reason: reason.toString() })));
    socket.on('message', (data) => {
      const frame = JSON.parse(data.toString()) as Frame;
      this.frames.push(frame);
      for (const listener of this.#listeners) listener(frame);
      this.#waiters = this.#waiters.filter((w) => {
        if (this.frames.length - 1 >= w.from && w.match(frame)) {
          w.resolve(frame);
          return false;
        }
        return true;
      });
    });
  }

  /** Opens a socket; with a token, authenticates through the Authorization header. */
  static async connect(url: string, token?: string, options: { waitForHello?: boolean } = {}): Promise<WsClient> {
    const socket = new WebSocket(url, token ? { headers: { authorization: `Bearer ${token}` } } : {});
    const client = new WsClient(socket);
    await new Promise<void>((resolve, reject) => {
      socket.once('open', () => resolve());
      socket.once('error', reject);
      socket.once('unexpected-response', (_req, res) => reject(new Error(`upgrade refused: ${res.statusCode}`)));
    });
    if (token && options.waitForHello !== false) await client.next('hello');
    return client;
  }

  /** Calls `listener` for every frame, those already received first. */
  onFrame(listener: (frame: Frame) => void): void {
    for (const frame of this.frames) listener(frame);
    this.#listeners.push(listener);
  }

  send(message: unknown): void {
    this.socket.send(typeof message === 'string' ? message : JSON.stringify(message));
  }

  /** The first frame (already received or still to come) of this type that matches. */
  next(type: string, match: (frame: Frame) => boolean = () => true, timeoutMs = 3000): Promise<Frame> {
    const test = (f: Frame) => f.type === type && match(f);
    const seen = this.frames.find(test);
    if (seen) return Promise.resolve(seen);
    return this.#wait(test, this.frames.length, timeoutMs, `${type} frame`);
  }

  /** Waits for a frame arriving after now. */
  nextNew(type: string, match: (frame: Frame) => boolean = () => true, timeoutMs = 3000): Promise<Frame> {
    return this.#wait((f) => f.type === type && match(f), this.frames.length, timeoutMs, `new ${type} frame`);
  }

  of(type: string): Frame[] {
    return this.frames.filter((f) => f.type === type);
  }

  /** Closes without a close frame, like a phone that lost its network. */
  drop(): void {
    this.socket.terminate();
  }

  close(): Promise<{ code: number; reason: string }> {
    this.socket.close();
    return this.closed;
  }

  #wait(match: (f: Frame) => boolean, from: number, timeoutMs: number, what: string): Promise<Frame> {
    return new Promise((resolve, reject) => {
      const recent = () => `${this.frames.length} frames, the last: ${JSON.stringify(this.frames.slice(-5).map((f) => f.type))}`;
      const timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}; got ${recent()}`)), timeoutMs);
      this.#waiters.push({
        match,
        from,
        resolve: (f) => {
          clearTimeout(timer);
          resolve(f);
        },
      });
    });
  }
}
