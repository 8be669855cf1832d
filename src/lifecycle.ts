import { setTimeout as sleep } from 'node:timers/promises';
import type { FastifyInstance } from 'fastify';
import type { AppContext } from './context.ts';
import type { App } from './http/app-type.ts';
import type { Logger } from './logger.ts';

/**
 * The graceful stop, in the order a load balancer needs: first /readyz
 * answers 503 (for SHUTDOWN_DELAY_SECONDS, while requests are still served),
 * so traffic moves elsewhere; then the listener closes, WebSockets get 1012,
 * in-flight requests finish and accepted writes commit; then the database
 * closes. server.ts runs this on SIGTERM/SIGINT within SHUTDOWN_GRACE_SECONDS.
 */
export async function drainAndClose(parts: { app: App; ctx: AppContext; metricsApp?: FastifyInstance; log: Logger }): Promise<void> {
  const { app, ctx, metricsApp, log } = parts;
  ctx.health.startDraining();
  const delayMs = ctx.config.shutdownDelayMs;
  if (delayMs > 0) {
    log.info({ delayMs }, 'draining: /readyz answers 503 until the listener closes');
    await sleep(delayMs);
  }
  await app.close();
  await metricsApp?.close();
  await ctx.close();
}
