import type { KyselyPlugin, PluginTransformQueryArgs, PluginTransformResultArgs, QueryResult, RootOperationNode, UnknownRow } from 'kysely';
import type { Metrics } from '../metrics.ts';
import type { DatabaseHandle } from './database.ts';
import type { ProcedureInput, ProcedureName, ProcedureOutput } from './procedures.ts';

const KINDS: Record<string, string> = {
  SelectQueryNode: 'select',
  InsertQueryNode: 'insert',
  UpdateQueryNode: 'update',
  DeleteQueryNode: 'delete',
};

/**
 * Times every query Kysely runs through the handle: transformQuery sees it
 * leave, transformResult sees its answer. A failed query has no result and
 * is not timed (its error reaches the caller, and the 5xx rate shows it).
 */
class QueryTimer implements KyselyPlugin {
  readonly #metrics: Metrics;
  readonly #started = new WeakMap<object, { at: number; kind: string }>();

  constructor(metrics: Metrics) {
    this.#metrics = metrics;
  }

  transformQuery({ node, queryId }: PluginTransformQueryArgs): RootOperationNode {
    this.#started.set(queryId, { at: performance.now(), kind: KINDS[node.kind] ?? 'other' });
    return node;
  }

  async transformResult({ result, queryId }: PluginTransformResultArgs): Promise<QueryResult<UnknownRow>> {
    const started = this.#started.get(queryId);
    if (started) this.#metrics.dbQueryDuration.observe({ kind: started.kind }, (performance.now() - started.at) / 1000);
    return result;
  }
}

/**
 * The same database, with every query and procedure timed into
 * navi_db_query_duration_seconds. Procedures (the hot path's transactions,
 * run next to the data) are timed as a whole.
 */
export function instrumentDatabase(handle: DatabaseHandle, metrics: Metrics): DatabaseHandle {
  const db = handle.db.withPlugin(new QueryTimer(metrics));
  return {
    db,
    dialect: handle.dialect,
    lockUsers: (trx, userIds) => handle.lockUsers(trx, userIds),
    async run<N extends ProcedureName>(procedure: N, input: ProcedureInput<N>): Promise<ProcedureOutput<N>> {
      const started = performance.now();
      try {
        return await handle.run(procedure, input);
      } finally {
        metrics.dbQueryDuration.observe({ kind: 'procedure' }, (performance.now() - started) / 1000);
      }
    },
    ping: () => handle.ping(),
    close: () => handle.close(),
  };
}
