import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { buildApp, type BuildOptions } from '../../src/app.ts';
import { loadConfig } from '../../src/config.ts';
import { createContext, type AppContext, type ContextOverrides, type ResolvedConfig } from '../../src/context.ts';
import type { App } from '../../src/http/app-type.ts';
import { createTestDatabase, type TestDatabase } from './database.ts';

export interface TestApp {
  app: App;
  ctx: AppContext;
  config: ResolvedConfig;
  /** http://127.0.0.1:port when started with listen. */
  url: string;
  /** ws://127.0.0.1:port/v1/ws when started with listen. */
  wsUrl: string;
  database: TestDatabase;
  /** Stops the app; with keepDatabase the database survives for a restart. */
  close(options?: { keepDatabase?: boolean }): Promise<void>;
}

export interface TestAppOptions extends ContextOverrides {
  /** Environment variables on top of the test defaults (validated like the real thing). */
  env?: Record<string, string>;
  /** Adjust the typed config directly (e.g. sub-second intervals the env does not allow). */
  configure?: (config: ResolvedConfig) => void;
  listen?: boolean;
  /** Reuse a database (to test restarts); otherwise each test gets its own. */
  database?: TestDatabase;
  /** Secret to reuse across a restart. */
  jwtSecret?: string;
  /** Called for every 5xx, as error reporting is (BuildOptions). */
  onServerError?: BuildOptions['onServerError'];
}

/** A real app on its own database, optionally listening on a random local port. */
export async function startTestApp(options: TestAppOptions = {}): Promise<TestApp> {
  const database = options.database ?? (await createTestDatabase());
  // Load shedding on the event-loop delay is off unless a test turns it on: on a machine
  // shared with other test runs a stall of the test process is not this app's overload.
  const config = loadConfig({
    NODE_ENV: 'test',
    LOG_LEVEL: 'silent',
    LOAD_SHED_EVENT_LOOP_DELAY_MS: '0',
    ...options.env,
  }) as ResolvedConfig;
  config.database = database.config;
  config.auth.jwtSecret = options.jwtSecret ?? randomBytes(32).toString('base64url');
  options.configure?.(config);
  const ctx = await database.whileMigrating(() => createContext(config, options));
  const app = await buildApp(ctx, { onServerError: options.onServerError });
  await ctx.start();
  let url = '';
  let wsUrl = '';
  if (options.listen) {
    await app.listen({ host: '127.0.0.1', port: 0 });
    const { port } = app.server.address() as AddressInfo;
    url = `http://127.0.0.1:${port}`;
    wsUrl = `ws://127.0.0.1:${port}/v1/ws`;
  }
  let closed = false;
  return {
    app,
    ctx,
    config,
    url,
    wsUrl,
    database,
    async close(closeOptions = {}) {
      if (closed) return;
      closed = true;
      await app.close();
      await ctx.close();
      if (!closeOptions.keepDatabase) await database.drop();
    },
  };
}
