import { Type } from 'typebox';
import { StringEnum, Timestamp } from '../../http/schemas.ts';
import type { AppContext } from '../../context.ts';
import type { App } from '../../http/app-type.ts';
import type { HealthReport } from '../../health.ts';
import { exemptFromLoadShedding } from '../../http/load-shedding.ts';

const CheckSchema = Type.Object({
  status: StringEnum(['ok', 'degraded', 'failing']),
  latencyMs: Type.Number({ description: 'How long the check took' }),
  detail: Type.Optional(Type.String({ description: 'Why the check is not ok' })),
  connections: Type.Optional(Type.Integer({ description: 'websocket: live connections on this instance' })),
});

const ReportSchema = (description: string) =>
  Type.Object(
    {
      status: StringEnum(['ok', 'degraded', 'failing', 'draining'], { description }),
      timestamp: Timestamp(),
      uptime: Type.Number({ description: 'Seconds since this instance started' }),
      checks: Type.Record(Type.String(), CheckSchema, {
        description:
          'One entry per configured subsystem: database, websocket, push (only when APNs is configured), redis (only when configured)',
      }),
    },
    { additionalProperties: false },
  );

const HealthSchema = ReportSchema(
  'failing (503) when a dependency needed for traffic is down; draining (503) while shutting down; degraded when an optional channel (push) is failing',
);
const ReadySchema = ReportSchema('ok (200) when the instance can take traffic; failing or draining (503) otherwise');
const LiveSchema = Type.Object(
  { status: StringEnum(['ok']), uptime: Type.Number({ description: 'Seconds since this instance started' }) },
  { additionalProperties: false },
);

const unhealthy = (report: HealthReport) => report.status === 'failing' || report.status === 'draining';

/**
 * /livez for the orchestrator's liveness probe (restart a wedged process),
 * /readyz for the load balancer (route traffic here or not), /health for people
 * and dashboards (every check, with latencies).
 */
export function healthRoutes(app: App, ctx: AppContext): void {
  app.get(
    '/livez',
    {
      config: exemptFromLoadShedding,
      schema: {
        tags: ['operations'],
        summary: 'Liveness: the process is running and its event loop answers (no dependency is checked)',
        response: { 200: LiveSchema },
      },
    },
    async () => ({ status: 'ok' as const, uptime: ctx.health.uptimeSeconds() }),
  );

  app.get(
    '/readyz',
    {
      config: exemptFromLoadShedding,
      schema: {
        tags: ['operations'],
        summary: 'Readiness: the database (and Redis, when configured) answer and the instance is not shutting down',
        description:
          'Answers 503 from the first shutdown signal on, and while the instance sheds load (a failing `load` check), so load balancers route elsewhere.',
        response: { 200: ReadySchema, 503: ReadySchema },
      },
    },
    async (request, reply) => {
      const report = await ctx.health.report('readiness');
      if (unhealthy(report)) request.log.warn({ status: report.status, checks: report.checks }, 'not ready');
      return reply.code(unhealthy(report) ? 503 : 200).send(report);
    },
  );

  app.get(
    '/health',
    {
      config: exemptFromLoadShedding,
      schema: {
        tags: ['operations'],
        summary: 'Every check with its status and latency: database, websocket, push, redis',
        response: { 200: HealthSchema, 503: HealthSchema },
      },
    },
    async (request, reply) => {
      const report = await ctx.health.report('health');
      if (report.status === 'failing') request.log.error({ checks: report.checks }, 'health check failing');
      return reply.code(unhealthy(report) ? 503 : 200).send(report);
    },
  );
}
