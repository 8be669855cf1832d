import type { AppContext } from '../../context.ts';
import type { App } from '../../http/app-type.ts';
import { bearerSecurity, principalOf, requireAuth } from '../../http/auth.ts';
import { NoContent, problems } from '../../http/schemas.ts';
import { clientNetwork } from '../../http/client-address.ts';
import { enforceLimit } from '../../rate-limit.ts';
import { NewDeviceBody, RefreshBody, SessionSchema } from './schemas.ts';
import { toSessionView } from './service.ts';

export function authRoutes(app: App, ctx: AppContext): void {
  const perIp = (name: string, ip: string) =>
    enforceLimit(ctx.rateLimiter, ctx.metrics, {
      name,
      key: ip,
      max: ctx.config.rateLimits.authPerMinute,
      windowMs: 60_000,
      message: 'Too many attempts from this network; try again shortly',
    });

  app.post(
    '/v1/auth/register',
    {
      schema: {
        tags: ['auth'],
        summary: 'Create a user with its first device',
        body: NewDeviceBody,
        response: { 201: SessionSchema, ...problems(400, 413, 415, 429) },
      },
    },
    async (request, reply) => {
      await perIp('register', clientNetwork(request.ip));
      const session = await ctx.services.auth.register(request.body);
      return reply.code(201).send(toSessionView(session));
    },
  );

  app.post(
    '/v1/auth/refresh',
    {
      schema: {
        tags: ['auth'],
        summary: 'Exchange a refresh token for a new token pair (the old refresh token stops working)',
        body: RefreshBody,
        response: { 200: SessionSchema, ...problems(400, 401, 413, 415, 429) },
      },
    },
    async (request) => {
      await perIp('refresh', clientNetwork(request.ip));
      return toSessionView(await ctx.services.auth.refresh(request.body.refreshToken));
    },
  );

  app.post(
    '/v1/auth/logout',
    {
      onRequest: requireAuth(ctx.services.auth),
      schema: {
        tags: ['auth'],
        summary: 'Sign this device out: its tokens stop working and its sockets close',
        security: bearerSecurity,
        response: { 204: NoContent, ...problems(401) },
      },
    },
    async (request, reply) => {
      const { userId, deviceId } = principalOf(request);
      await ctx.services.devices.remove(userId, deviceId, 'logout');
      return reply.code(204).send(null);
    },
  );
}
