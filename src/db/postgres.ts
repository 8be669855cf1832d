import { PostgresDialect } from 'kysely';
import pg from 'pg';

const INT8_OID = 20;

/**
 * A pool whose BIGINT columns (times in ms, cursors, counts) come back as
 * numbers, as on SQLite. Values stay far below 2^53.
 */
export function postgresPool(url: string, max = 10): pg.Pool {
  const pool = new pg.Pool({
    connectionString: url,
    max,
    types: {
      getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
        oid === INT8_OID ? (value: string) => Number(value) : pg.types.getTypeParser(oid, format)) as typeof pg.types.getTypeParser,
    },
  });
  // A connection the server drops (a restart, a failover, a network cut) emits
  // 'error': on the pool when idle, on the client itself while checked out. With no
  // listener either would crash the process. Queries in flight fail on their own
  // (503 for requests), the pool discards the dead client and connects again on
  // the next query, and the database health check reports the outage meanwhile.
  pool.on('error', () => undefined);
  pool.on('connect', (client) => client.on('error', () => undefined));
  return pool;
}

export function postgresDialect(url: string): { dialect: PostgresDialect; pool: pg.Pool } {
  const pool = postgresPool(url);
  return { dialect: new PostgresDialect({ pool }), pool };
}
