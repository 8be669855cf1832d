import { randomBytes } from 'node:crypto';
import { createTestDatabase, type TestDatabase } from './database.ts';
import { dropPrefix, SHARED_REDIS_URL, uniquePrefix } from './redis-server.ts';
import { freePort, ServerProcess } from './server-process.ts';

/**
 * Several real service processes on one PostgreSQL schema and one Redis, as
 * an operator runs them behind a load balancer (docs/scaling.md). Each
 * instance keeps its port across restarts, so a test can play the load
 * balancer by picking which one a client talks to.
 */
export class Cluster {
  readonly database: TestDatabase;
  readonly redisUrl: string;
  readonly prefix: string;
  readonly #env: Record<string, string>;
  readonly #ports: number[];
  readonly instances: Array<ServerProcess | undefined>;

  private constructor(database: TestDatabase, redisUrl: string, prefix: string, env: Record<string, string>, ports: number[]) {
    this.database = database;
    this.redisUrl = redisUrl;
    this.prefix = prefix;
    this.#env = env;
    this.#ports = ports;
    this.instances = ports.map(() => undefined);
  }

  static async start(options: { instances?: number; redisUrl?: string; env?: Record<string, string> } = {}): Promise<Cluster> {
    const database = await createTestDatabase();
    if (database.config.kind !== 'postgres') throw new Error('a cluster needs PostgreSQL (run with DATABASE_URL=postgres://...)');
    const prefix = uniquePrefix();
    const redisUrl = options.redisUrl ?? SHARED_REDIS_URL;
    const env = {
      NODE_ENV: 'development',
      LOG_LEVEL: 'info',
      DATABASE_URL: database.config.url,
      JWT_SECRET: randomBytes(32).toString('base64url'),
      REDIS_URL: redisUrl,
      REDIS_KEY_PREFIX: prefix,
      PRESENCE_HEARTBEAT_SECONDS: '1',
      WS_LOG_CHECK_SECONDS: '1',
      WS_HEARTBEAT_SECONDS: '2',
      RATE_LIMIT_TAPS_PER_MINUTE: '1000000',
      RATE_LIMIT_AUTH_PER_MINUTE: '1000000',
      ...options.env,
    };
    const ports = await Promise.all(Array.from({ length: options.instances ?? 2 }, () => freePort()));
    const cluster = new Cluster(database, redisUrl, prefix, env, ports);
    // One after the other: the first runs the migrations.
    for (let i = 0; i < ports.length; i++) await cluster.startInstance(i);
    return cluster;
  }

  url(i: number): string {
    return `http://127.0.0.1:${this.#ports[i]}`;
  }

  wsUrl(i: number): string {
    return `ws://127.0.0.1:${this.#ports[i]}/v1/ws`;
  }

  instance(i: number): ServerProcess {
    const instance = this.instances[i];
    if (!instance) throw new Error(`instance ${i} is not running`);
    return instance;
  }

  async startInstance(i: number, env: Record<string, string> = {}): Promise<ServerProcess> {
    const instance = await this.database.whileMigrating(() => ServerProcess.start({ ...this.#env, PORT: String(this.#ports[i]), ...env }));
    this.instances[i] = instance;
    return instance;
  }

  /** SIGKILL: no goodbye, no clean-up (a crashed machine). */
  async kill(i: number): Promise<void> {
    await this.instance(i).stop('SIGKILL');
    this.instances[i] = undefined;
  }

  /** SIGTERM: a deploy's graceful stop. */
  async stop(i: number): Promise<void> {
    await this.instance(i).stop('SIGTERM');
    this.instances[i] = undefined;
  }

  async close(): Promise<void> {
    await Promise.all(this.instances.map((instance) => instance?.stop('SIGKILL')));
    await this.database.drop();
    if (this.redisUrl === SHARED_REDIS_URL) await dropPrefix(this.prefix);
  }
}
