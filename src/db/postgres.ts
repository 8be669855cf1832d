import { PostgresDialect } from 'kysely';
import pg from 'pg';

const INT8_OID = 20;

/**
 * A pool whose BIGINT columns (times in ms, cursors, counts) come back as
 * numbers, as on SQLite. Values stay far below 2^53.
 */
export function postgresPool(url: string, max = 10): pg.Pool {
  return new pg.Pool({
    connectionString: url,
    max,
    types: {
      getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
        oid === INT8_OID ? (value: string) => Number(value) : pg.types.getTypeParser(oid, format)) as typeof pg.types.getTypeParser,
    },
  });
}

export function postgresDialect(url: string): { dialect: PostgresDialect; pool: pg.Pool } {
  const pool = postgresPool(url);
  return { dialect: new PostgresDialect({ pool }), pool };
}
