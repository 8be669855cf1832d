/** What the SQLite thread is started with: the file, and the modules defining the procedures it runs. */
export interface WorkerStart {
  path: string;
  procedureModules: string[];
}

/** Messages between the main thread and the SQLite thread. */
export type WorkerRequest =
  | { type: 'query'; id: number; sql: string; parameters: readonly unknown[] }
  | { type: 'call'; id: number; procedure: string; input: unknown }
  | { type: 'close' };

export type WorkerReply =
  | { type: 'ready' }
  | { type: 'failed'; message: string; code?: string }
  | { type: 'result'; id: number; rows?: unknown[]; changes?: number; lastInsertRowid?: number }
  | { type: 'returned'; id: number; output: unknown }
  | { type: 'error'; id: number; message: string; code?: string }
  | { type: 'closed' };
