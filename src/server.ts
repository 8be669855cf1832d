import closeWithGrace from 'close-with-grace';
import type { FastifyRequest } from 'fastify';
import { buildApp } from './app.ts';
import { ConfigError, loadConfig, type Config } from './config.ts';
import { createContext } from './context.ts';
import { DatabaseInUseError } from './db/sqlite-owner.ts';
import { resolveJwtSecret } from './jwt-secret.ts';
import { drainAndClose } from './lifecycle.ts';
import { childLogger } from './logger.ts';
import { buildMetricsApp, metricsExposure } from './modules/health/metrics-route.ts';

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
  const ctx = await createContext(resolveJwtSecret(config)).catch((error: unknown) => {
    if (!(error instanceof DatabaseInUseError)) throw error;
    process.stderr.write(`navi: ${error.message}\n`);
    process.exit(1);
  });
  const log = childLogger(ctx.logger, 'server');
  const reportError = await errorReporter(config, log);
  const app = await buildApp(ctx, { onServerError: reportError });
  const exposure = metricsExposure(ctx);
  const metricsApp = exposure === 'separate' ? buildMetricsApp(ctx) : undefined;

  closeWithGrace({ delay: config.shutdownGraceMs, logger: log }, async ({ signal, err }) => {
    if (err) log.error({ err }, 'shutting down after an unexpected error');
    else log.info({ signal }, 'shutting down');
    await drainAndClose({ app, ctx, metricsApp, log });
  });

  await ctx.start();
  await app.listen({ host: config.host, port: config.port });
  if (metricsApp) await metricsApp.listen({ host: config.host, port: config.metrics.port });
  if (exposure === 'off') log.warn('/metrics is off: in production set METRICS_TOKEN or METRICS_PORT (docs/operations.md#metrics)');
  log.info({ database: config.database.kind, push: ctx.push.state(), metrics: exposure, health: ctx.health.names }, 'navi is listening');
}

/** Sentry only when a DSN is configured; otherwise errors are only logged. */
async function errorReporter(config: Config, log: ReturnType<typeof childLogger>) {
  if (!config.sentryDsn) return undefined;
  const Sentry = await import('@sentry/node');
  Sentry.init({ dsn: config.sentryDsn, environment: config.env });
  log.info('error reporting to Sentry is on');
  return (error: unknown, request: FastifyRequest) => {
    Sentry.captureException(error, { tags: { requestId: request.id, route: request.routeOptions.url ?? 'unmatched' } });
  };
}

await main();
