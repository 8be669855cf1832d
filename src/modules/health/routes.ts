import { Type } from 'typebox';
import { StringEnum } from '../../http/schemas.ts';
import type { AppContext } from '../../context.ts';
import type { App } from '../../http/app-type.ts';

const HealthSchema = Type.Object({
  status: StringEnum(['ok', 'degraded', 'failing'], {
    description: 'failing (503) when the database is unreachable; degraded when push is failing',
  }),
  database: StringEnum(['ok', 'failing']),
  push: StringEnum(['disabled', 'ok', 'failing'], { description: 'disabled when APNs is not configured' }),
  connections: Type.Integer({ description: 'Live WebSocket connections on this instance' }),
});

export function healthRoutes(app: App, ctx: AppContext): void {
  app.get(
    '/health',
    {
      schema: {
        tags: ['operations'],
        summary: 'Liveness and readiness: checks the database',
        response: { 200: HealthSchema, 503: HealthSchema },
      },
    },
    async (request, reply) => {
      let database: 'ok' | 'failing' = 'ok';
      try {
        await ctx.database.ping();
      } catch (error) {
        request.log.error({ err: error }, 'health check: database unreachable');
        database = 'failing';
      }
      const push = ctx.pushState();
      const status = database === 'failing' ? 'failing' : push === 'failing' ? 'degraded' : 'ok';
      return reply.code(database === 'ok' ? 200 : 503).send({ status, database, push, connections: ctx.connections.size });
    },
  );

  app.get('/metrics', { schema: { hide: true } }, async (_request, reply) =>
    reply.type(ctx.metrics.registry.contentType).send(await ctx.metrics.registry.metrics()),
  );
}
