import { Worker } from 'node:worker_threads';
import {
  CompiledQuery,
  SqliteAdapter,
  SqliteIntrospector,
  SqliteQueryCompiler,
  type DatabaseConnection,
  type DatabaseIntrospector,
  type Dialect,
  type DialectAdapter,
  type Driver,
  type Kysely,
  type QueryCompiler,
  type QueryResult,
} from 'kysely';
import type { WorkerReply, WorkerRequest, WorkerStart } from './sqlite-worker-protocol.ts';

/** A SQLite error as the rest of the service sees it (with better-sqlite3's `code`). */
export class SqliteWorkerError extends Error {
  readonly code: string | undefined;
  constructor(message: string, code?: string) {
    super(message);
    this.name = 'SqliteError';
    this.code = code;
  }
}

/**
 * Kysely on a SQLite connection that lives in a worker thread
 * (sqlite-worker.ts), so fsyncs and checkpoints never block the event loop.
 * There is one connection; Kysely serialises its use (transactions included).
 */
export class SqliteWorkerDialect implements Dialect {
  readonly #path: string;
  readonly #procedureModules: string[];
  #driver: SqliteWorkerDriver | undefined;

  /** `procedureModules`: the modules whose procedures the thread runs (see procedures.ts). */
  constructor(path: string, procedureModules: string[] = []) {
    this.#path = path;
    this.#procedureModules = procedureModules;
  }

  createDriver(): Driver {
    this.#driver = new SqliteWorkerDriver(this.#path, this.#procedureModules);
    return this.#driver;
  }

  /**
   * Runs a procedure (procedures.ts), by id, in the database thread. The caller
   * must hold Kysely's connection (db.connection()), so no transaction of the
   * main thread is open in between.
   */
  call(procedure: string, input: unknown): Promise<unknown> {
    if (!this.#driver) throw new Error('the database is not initialised yet');
    return this.#driver.call(procedure, input);
  }
  createQueryCompiler(): QueryCompiler {
    return new SqliteQueryCompiler();
  }
  createAdapter(): DialectAdapter {
    return new SqliteAdapter();
  }
  createIntrospector(db: Kysely<unknown>): DatabaseIntrospector {
    return new SqliteIntrospector(db);
  }
}

class SqliteWorkerDriver implements Driver {
  readonly #path: string;
  readonly #procedureModules: string[];
  #connection: WorkerConnection | undefined;
  #closed: Promise<void> | undefined;

  constructor(path: string, procedureModules: string[]) {
    this.#path = path;
    this.#procedureModules = procedureModules;
  }

  async init(): Promise<void> {
    const workerData: WorkerStart = { path: this.#path, procedureModules: this.#procedureModules };
    const worker = new Worker(new URL('./sqlite-worker.ts', import.meta.url), { workerData });
    try {
      await new Promise<void>((resolve, reject) => {
        const onMessage = (reply: WorkerReply) => {
          if (reply.type === 'ready') resolve();
          if (reply.type === 'failed') reject(new SqliteWorkerError(reply.message, reply.code));
        };
        worker.once('message', onMessage);
        worker.once('error', reject);
      });
    } catch (error) {
      // A thread that could not open the file has nothing to close: end it, or closing would wait for it forever.
      await worker.terminate();
      throw error;
    }
    this.#connection = new WorkerConnection(worker);
    this.#connection.listen();
  }

  async acquireConnection(): Promise<DatabaseConnection> {
    return this.#connection!;
  }
  async beginTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw('begin'));
  }
  async commitTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw('commit'));
  }
  async rollbackTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw('rollback'));
  }
  async releaseConnection(): Promise<void> {}

  call(procedure: string, input: unknown): Promise<unknown> {
    return this.#connection!.call(procedure, input);
  }

  async destroy(): Promise<void> {
    this.#closed ??= this.#connection?.close() ?? Promise.resolve();
    await this.#closed;
  }
}

class WorkerConnection implements DatabaseConnection {
  readonly #worker: Worker;
  readonly #pending = new Map<number, { resolve: (reply: WorkerReply) => void; reject: (error: Error) => void }>();
  #nextId = 1;
  #gone: Error | undefined;
  #onClosed: (() => void) | undefined;

  constructor(worker: Worker) {
    this.#worker = worker;
  }

  listen(): void {
    this.#worker.on('message', (reply: WorkerReply) => {
      if (reply.type === 'closed') return this.#onClosed?.();
      if (reply.type !== 'result' && reply.type !== 'returned' && reply.type !== 'error') return;
      const pending = this.#pending.get(reply.id);
      this.#pending.delete(reply.id);
      if (reply.type === 'error') pending?.reject(new SqliteWorkerError(reply.message, reply.code));
      else pending?.resolve(reply);
    });
    // If the thread dies, every query fails fast (a 503 for requests) rather than hanging.
    const fail = (error: Error) => {
      this.#gone = new SqliteWorkerError(`the SQLite thread stopped: ${error.message}`, 'SQLITE_WORKER_GONE');
      for (const pending of this.#pending.values()) pending.reject(this.#gone);
      this.#pending.clear();
    };
    this.#worker.on('error', fail);
    this.#worker.on('exit', (code) => fail(new Error(`exit code ${code}`)));
  }

  async executeQuery<R>(compiled: CompiledQuery): Promise<QueryResult<R>> {
    const reply = await this.#request((id) => ({ type: 'query', id, sql: compiled.sql, parameters: compiled.parameters }));
    if (reply.type !== 'result') throw new Error('unexpected reply');
    if (reply.rows) return { rows: reply.rows as R[] };
    return {
      rows: [],
      numAffectedRows: BigInt(reply.changes ?? 0),
      insertId: reply.lastInsertRowid === undefined ? undefined : BigInt(reply.lastInsertRowid),
    };
  }

  async call(procedure: string, input: unknown): Promise<unknown> {
    const reply = await this.#request((id) => ({ type: 'call', id, procedure, input }));
    if (reply.type !== 'returned') throw new Error('unexpected reply');
    return reply.output;
  }

  #request(build: (id: number) => WorkerRequest): Promise<WorkerReply> {
    if (this.#gone) return Promise.reject(this.#gone);
    const id = this.#nextId++;
    return new Promise<WorkerReply>((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      this.#worker.postMessage(build(id));
    });
  }

  // eslint-disable-next-line require-yield
  async *streamQuery<R>(): AsyncIterableIterator<QueryResult<R>> {
    throw new Error('streaming is not supported by the SQLite worker dialect');
  }

  async close(): Promise<void> {
    if (this.#gone) return;
    const closed = new Promise<void>((resolve) => (this.#onClosed = resolve));
    this.#worker.postMessage({ type: 'close' } satisfies WorkerRequest);
    await closed;
    await this.#worker.terminate();
  }
}
