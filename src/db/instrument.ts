import type { KyselyPlugin, PluginTransformQueryArgs, PluginTransformResultArgs, QueryResult, RootOperationNode, UnknownRow } from 'kysely';
import type { Metrics } from '../metrics.ts';
import type { DatabaseHandle } from './database.ts';

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

/** Times every query Kysely runs, into navi_db_query_duration_seconds (give it to openDatabase). */
export const queryTimer = (metrics: Metrics): KyselyPlugin => new QueryTimer(metrics);

/**
 * The same database, with every procedure (the hot path's transactions, run
 * next to the data) timed as a whole into navi_db_query_duration_seconds.
 */
export function timeProcedures(handle: DatabaseHandle, metrics: Metrics): DatabaseHandle {
  return {
    ...handle,
    async run(procedure, input) {
      const started = performance.now();
      try {
        return await handle.run(procedure, input);
      } finally {
        metrics.dbQueryDuration.observe({ kind: 'procedure' }, (performance.now() - started) / 1000);
      }
    },
  };
}
