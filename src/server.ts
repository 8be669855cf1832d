import closeWithGrace from 'close-with-grace';
import { buildApp } from './app.ts';
import { ConfigError, loadConfig, type Config } from './config.ts';
import { createContext } from './context.ts';
import { createErrorReporter } from './error-reporting.ts';
import { resolveJwtSecret } from './jwt-secret.ts';
import { childLogger } from './logger.ts';

/** Loads config, builds context and app, listens, and shuts down gracefully on SIGTERM/SIGINT. */
async function main(): Promise<void> {
  let config: Config;
  try {
    config = loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`navi: ${error.message}\n`);
      process.exit(1);
    }
    throw error;
  }
  const ctx = await createContext(resolveJwtSecret(config));
  const log = childLogger(ctx.logger, 'server');
  const errorReporter = await createErrorReporter(config, log);
  const app = await buildApp(ctx, { onServerError: errorReporter?.report });

  closeWithGrace({ delay: config.shutdownGraceMs, logger: log }, async ({ signal, err }) => {
    if (err) log.error({ err }, 'shutting down after an unexpected error');
    else log.info({ signal }, 'shutting down');
    await app.close();
    await ctx.close();
    await errorReporter?.close();
  });

  await ctx.start();
  await app.listen({ host: config.host, port: config.port });
  log.info({ database: config.database.kind, push: ctx.push.state() }, 'navi is listening');
}

await main();
