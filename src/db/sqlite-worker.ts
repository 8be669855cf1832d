/**
 * The thread that owns the SQLite connection. better-sqlite3 is synchronous:
 * on the main thread every commit's fsync (synchronous=FULL) and every WAL
 * checkpoint would stop the event loop, and with it every socket. Here they
 * only stop this thread; the main thread sends compiled queries and
 * procedure calls and awaits the answers (see sqlite-worker-dialect.ts).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { Kysely, SqliteDialect } from 'kysely';
import { registeredProcedure, type ProcedureContext } from './procedures.ts';
import type { Database, Trx } from './schema.ts';
import { openSqlite, statementCache } from './sqlite.ts';
import type { WorkerReply, WorkerRequest, WorkerStart } from './sqlite-worker-protocol.ts';

const port = parentPort!;
const { path, procedureModules } = workerData as WorkerStart;
const context: ProcedureContext = { dialect: 'sqlite' };

const failed = (error: unknown): WorkerReply => {
  const { message, code } = error as { message: string; code?: string };
  return { type: 'failed', message, code };
};

try {
  const db = openSqlite(path);
  const prepare = statementCache(db);
  // Importing a module defines its procedures in this thread's registry.
  await Promise.all(procedureModules.map((module) => import(module)));
  // Procedures use Kysely too, on this thread's connection: synchronous
  // underneath, so each call runs to completion before the next message.
  const kysely = new Kysely<Database>({ dialect: new SqliteDialect({ database: { prepare, close: () => {} } }) });
  let calls: Promise<void> = Promise.resolve();
  port.on('message', (request: WorkerRequest) => {
    if (request.type === 'call') {
      calls = calls.then(() => call(kysely, request.id, request.procedure, request.input));
      return;
    }
    if (request.type === 'close') {
      db.close();
      port.postMessage({ type: 'closed' } satisfies WorkerReply);
      port.close();
      return;
    }
    try {
      const statement = prepare(request.sql);
      if (statement.reader) {
        port.postMessage({ type: 'result', id: request.id, rows: statement.all(request.parameters) } satisfies WorkerReply);
      } else {
        const { changes, lastInsertRowid } = statement.run(request.parameters);
        port.postMessage({
          type: 'result',
          id: request.id,
          changes: Number(changes),
          lastInsertRowid: Number(lastInsertRowid),
        } satisfies WorkerReply);
      }
    } catch (error) {
      const { message, code } = error as { message: string; code?: string };
      port.postMessage({ type: 'error', id: request.id, message, code } satisfies WorkerReply);
    }
  });
  port.postMessage({ type: 'ready' } satisfies WorkerReply);
} catch (error) {
  port.postMessage(failed(error));
}

async function call(kysely: Kysely<Database>, id: number, procedureId: string, input: unknown): Promise<void> {
  try {
    const { run } = registeredProcedure(procedureId);
    const output = await kysely.transaction().execute((trx) => run(trx as Trx, input, context));
    port.postMessage({ type: 'returned', id, output } satisfies WorkerReply);
  } catch (error) {
    const { message, code } = error as { message: string; code?: string };
    port.postMessage({ type: 'error', id, message, code } satisfies WorkerReply);
  }
}
