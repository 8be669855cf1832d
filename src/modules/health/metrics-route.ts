import { timingSafeEqual } from 'node:crypto';
import Fastify, { type FastifyBaseLogger, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import type { AppContext } from '../../context.ts';
import { installErrorHandling } from '../../http/error-handler.ts';
import { problems, ProblemSchema } from '../../http/schemas.ts';
import { exemptFromLoadShedding } from '../../http/load-shedding.ts';
import { AppError } from '../../errors.ts';
import { childLogger } from '../../logger.ts';

/**
 * Where /metrics is served (docs/operations.md#metrics):
 *   METRICS_PORT set      on its own listener only, never on the public port
 *   METRICS_TOKEN set     requires `Authorization: Bearer <METRICS_TOKEN>` (on either listener)
 *   neither, production   not served at all: metrics name routes and volumes, not for the internet
 *   neither, otherwise    open on the main port (development, tests)
 */
export type MetricsExposure = 'main' | 'separate' | 'off';

export function metricsExposure(ctx: Pick<AppContext, 'config'>): MetricsExposure {
  const { metrics, env } = ctx.config;
  if (metrics.port !== undefined) return 'separate';
  if (metrics.token !== undefined || env !== 'production') return 'main';
  return 'off';
}

function tokenMatches(given: string, expected: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

/** GET /metrics on `app` (the main app or the metrics listener), behind the token when one is set. */
export function registerMetricsRoute(app: FastifyInstance, ctx: AppContext): void {
  const token = ctx.config.metrics.token;
  const schema = {
    hide: true,
    response: { 200: Type.String({ description: 'Prometheus text exposition format' }), ...(token === undefined ? {} : problems(401)) },
  };
  app.get('/metrics', { config: exemptFromLoadShedding, schema }, async (request: FastifyRequest, reply: FastifyReply) => {
    if (token !== undefined) {
      const match = /^Bearer (.+)$/i.exec(request.headers.authorization ?? '');
      if (!match) throw new AppError('UNAUTHORIZED', 'Send Authorization: Bearer <METRICS_TOKEN>');
      if (!tokenMatches(match[1]!, token)) throw new AppError('INVALID_TOKEN', 'That is not the metrics token');
    }
    return reply.type(ctx.metrics.registry.contentType).send(await ctx.metrics.registry.metrics());
  });
}

/** The separate metrics listener (METRICS_PORT): /metrics and nothing else. */
export function buildMetricsApp(ctx: AppContext): FastifyInstance {
  const app = Fastify({
    loggerInstance: childLogger(ctx.logger, 'server') as FastifyBaseLogger,
    disableRequestLogging: true,
    requestTimeout: 15_000,
  });
  installErrorHandling(app, () => {});
  app.addSchema(ProblemSchema);
  registerMetricsRoute(app, ctx);
  return app;
}
