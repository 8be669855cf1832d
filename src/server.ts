// First, before any other module runs: one clear line on a Node.js that is too old.
import '../scripts/require-node.cjs';
import closeWithGrace from 'close-with-grace';
import type { AddressInfo } from 'node:net';
import { buildApp } from './app.ts';
import { loadConfig, type Config } from './config.ts';
import { createContext } from './context.ts';
import { createErrorReporter } from './error-reporting.ts';
import { resolveJwtSecret } from './jwt-secret.ts';
import { drainAndClose } from './lifecycle.ts';
import { childLogger } from './logger.ts';
import { buildMetricsApp, metricsExposure } from './modules/health/metrics-route.ts';
import { describeStartFailure, type StartStage } from './start-failure.ts';

/** How far the start got, so a failure can name the setting behind it. */
const starting: { stage: StartStage; config?: Config } = { stage: 'configuration' };

/** Loads config, builds context and app, listens, and shuts down gracefully on SIGTERM/SIGINT. */
async function main(): Promise<void> {
  const config = loadConfig();
  starting.config = config;
  starting.stage = 'secret';
  const resolved = resolveJwtSecret(config);
  starting.stage = 'database';
  const ctx = await createContext(resolved);
  starting.stage = 'running';
  const log = childLogger(ctx.logger, 'server');
  const errorReporter = await createErrorReporter(config, log);
  const app = await buildApp(ctx, { onServerError: errorReporter?.report });
  const exposure = metricsExposure(ctx);
  const metricsApp = exposure === 'separate' ? buildMetricsApp(ctx) : undefined;

  closeWithGrace({ delay: config.shutdownGraceMs, logger: log }, async ({ signal, err }) => {
    if (err) log.error({ err }, 'shutting down after an unexpected error');
    else log.info({ signal }, 'shutting down');
    await drainAndClose({ app, ctx, metricsApp, log });
    await errorReporter?.close();
  });

  await ctx.start();
  starting.stage = 'listen';
  try {
    await app.listen({ host: config.host, port: config.port });
    if (metricsApp) await metricsApp.listen({ host: config.host, port: config.metrics.port });
  } catch (error) {
    await metricsApp?.close();
    await app.close();
    await ctx.close();
    throw error;
  }
  if (exposure === 'off') log.warn('/metrics is off: in production set METRICS_TOKEN or METRICS_PORT (docs/operations.md#metrics)');
  const url = baseUrl(config.host, (app.server.address() as AddressInfo).port);
  const docs = config.docsEnabled ? `${url}/docs` : undefined;
  log.info(
    { url, docs, database: config.database.kind, push: ctx.pushState(), metrics: exposure, health: ctx.health.names },
    `navi is listening on ${url}${docs ? `; API reference at ${docs}` : ''}`,
  );
}
/** The address to open: a wildcard host (every interface) is reached locally through localhost. */
function baseUrl(host: string, port: number): string {
  if (host === '0.0.0.0' || host === '::') return `http://localhost:${port}`;
  return `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
}

try {
  await main();
} catch (error) {
  // A setting to fix is one line naming it; only what looks like a bug gets its stack.
  const failure = describeStartFailure(error, starting.stage, starting.config);
  for (const line of failure.lines) process.stderr.write(`navi: ${line}\n`);
  if (failure.stack !== undefined) process.stderr.write(`${failure.stack}\n`);
  process.exit(1);
}
