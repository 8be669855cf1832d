import type { DialectName } from './dialect.ts';
import type { Trx } from './schema.ts';

/** What a procedure may need to know about where it runs. */
export interface ProcedureContext {
  dialect: DialectName;
}

/**
 * A transaction that runs next to the data: on SQLite inside the database
 * thread as one message (instead of one round trip per statement), on
 * PostgreSQL in the caller's process. Input and output are plain data, so
 * they can cross a thread.
 *
 * Features define their procedures in a module of their own and hand the
 * definitions to `openDatabase`; the SQLite thread imports those modules at
 * start (it learns which from its start data), which registers them there too.
 * The database layer itself knows no feature.
 */
export interface Procedure<I, O> {
  /** `<module URL>#<name>`: how the SQLite thread finds it. */
  readonly id: string;
  /** The module that defines it; the SQLite thread imports it. */
  readonly module: string;
  run(trx: Trx, input: I, context: ProcedureContext): Promise<O>;
}

type AnyProcedure = Procedure<never, unknown>;
type Definitions = Record<string, (trx: Trx, input: never, context: ProcedureContext) => Promise<unknown>>;
type Defined<D extends Definitions> = {
  [K in keyof D]: D[K] extends (trx: Trx, input: infer I, context: ProcedureContext) => Promise<infer O> ? Procedure<I, O> : never;
};

const registry = new Map<string, AnyProcedure>();

/** Defines a module's procedures; call it once per module, with `import.meta.url`. */
export function defineProcedures<D extends Definitions>(module: string, definitions: D): Defined<D> {
  const defined: Record<string, AnyProcedure> = {};
  for (const [name, run] of Object.entries(definitions)) {
    const procedure = { id: `${module}#${name}`, module, run } as AnyProcedure;
    registry.set(procedure.id, procedure);
    defined[name] = procedure;
  }
  return defined as Defined<D>;
}

/** A procedure defined by a module this thread has imported. */
export function registeredProcedure(id: string): Procedure<unknown, unknown> {
  const procedure = registry.get(id);
  if (!procedure) throw new Error(`unknown procedure ${id}: its module was not given to openDatabase`);
  return procedure as unknown as Procedure<unknown, unknown>;
}
