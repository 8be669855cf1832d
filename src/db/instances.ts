import pg from 'pg';

/**
 * How many instances may share a PostgreSQL database: with Redis (REDIS_URL)
 * any number, since live delivery and presence cross instances through it;
 * without, exactly one, since each instance would see only its own sockets
 * (live taps would not reach a partner on another instance, and devices live
 * there would be pushed as if offline).
 *
 * A session-level advisory lock on a connection of its own, for the life of
 * the process: instances with Redis hold it shared, an instance without holds
 * it alone. The lock is keyed by the schema, so separate environments in one
 * database do not see each other; PostgreSQL drops it however the process
 * ends, so a crash leaves nothing behind.
 */
export class InstancesConflictError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InstancesConflictError';
  }
}

export interface InstanceSlot {
  release(): Promise<void>;
}

export async function claimInstanceSlot(url: string, withRedis: boolean): Promise<InstanceSlot> {
  const client = new pg.Client({ connectionString: url });
  // A dropped connection loses the slot; that is no reason to crash the service.
  client.on('error', () => undefined);
  await client.connect();
  try {
    const mode = withRedis ? 'pg_try_advisory_lock_shared' : 'pg_try_advisory_lock';
    const { rows } = await client.query<{ granted: boolean; schema: string }>(
      `select ${mode}(hashtext('navi instances ' || current_schema())) as granted, current_schema() as schema`,
    );
    const { granted, schema } = rows[0]!;
    if (!granted) {
      throw new InstancesConflictError(
        withRedis
          ? `an instance without REDIS_URL is running on this PostgreSQL database (schema ${schema}): give every instance the same REDIS_URL (docs/scaling.md)`
          : `another instance is running on this PostgreSQL database (schema ${schema}): several instances need REDIS_URL (docs/scaling.md)`,
      );
    }
  } catch (error) {
    await client.end();
    throw error;
  }
  return { release: () => client.end() };
}
