/** Messages between bench/sockets.ts and its client processes (bench/ws-clients.ts). */
export type ToClients =
  /** Sign up this many users (one device each) over HTTP; their tokens stay in the client process. */
  | { type: 'register'; baseUrl: string; count: number; concurrency: number }
  /** Open one socket per registered user (or `count` unauthenticated ones for the bare server), `batch` at a time. */
  | { type: 'connect'; wsUrl: string; count: number; batch: number; authenticated: boolean }
  | { type: 'status' }
  | { type: 'close' };

export interface ClientStatus {
  type: 'status';
  open: number;
  /** Sockets that closed after opening, by close code. */
  closedByCode: Record<string, number>;
  failedToOpen: number;
  errors: string[];
  /** Server pings the fewest- and most-pinged socket received. */
  minPings: number;
  maxPings: number;
  /** Slowest connect (open + hello), ms: a SYN dropped by a full backlog shows as a one-second retry. */
  slowestConnectMs: number;
}

export type FromClients = { type: 'registered'; count: number } | ClientStatus | { type: 'closed' } | { type: 'failed'; message: string };
