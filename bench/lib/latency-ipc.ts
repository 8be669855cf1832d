/**
 * Messages between bench/latency.ts (the senders) and
 * bench/latency-receivers.ts (the recipients' sockets), which run in two
 * processes so that neither delays the other's timestamps.
 */
export interface Recipient {
  userId: string;
  accessToken: string;
}

export type ToReceivers =
  { type: 'connect'; wsUrl: string; recipients: Recipient[] } | { type: 'clock'; sentAt: number } | { type: 'finish'; graceMs: number };

export type FromReceivers =
  | { type: 'ready'; connected: number }
  | { type: 'clock'; sentAt: number; remoteNow: number }
  | {
      type: 'arrivals';
      /** Tap ids and the wall-clock time their `tap` frame arrived, in the same order. */
      ids: string[];
      times: number[];
      acksSent: number;
      errorFrames: string[];
      closed: number;
    }
  | { type: 'failed'; message: string };

/**
 * Both processes stamp times with the same wall clock: the process's time
 * origin (the system clock, read at start-up) plus the monotonic time since.
 * The offset between the two processes is measured at the start of a run
 * (see estimateClockOffset) and reported; it is a few microseconds.
 */
export const wallClockMs = (): number => performance.timeOrigin + performance.now();
