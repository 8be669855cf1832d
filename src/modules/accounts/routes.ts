import type { AppContext } from '../../context.ts';
import type { App } from '../../http/app-type.ts';
import { bearerSecurity, principalOf, requireAuth } from '../../http/auth.ts';
import { NoContent, problems } from '../../http/schemas.ts';
import { MeSchema, UpdateMeBody } from './schemas.ts';

export function accountRoutes(app: App, ctx: AppContext): void {
  const { accounts, auth } = ctx.services;
  const authenticated = { onRequest: requireAuth(auth) };

  app.get(
    '/v1/me',
    {
      ...authenticated,
      schema: {
        tags: ['account'],
        summary: 'Me: my user, my devices and my pairings',
        security: bearerSecurity,
        response: { 200: MeSchema, ...problems(401) },
      },
    },
    async (request) => accounts.me(principalOf(request)),
  );

  app.patch(
    '/v1/me',
    {
      ...authenticated,
      schema: {
        tags: ['account'],
        summary: 'Set my display name',
        security: bearerSecurity,
        body: UpdateMeBody,
        response: { 200: MeSchema, ...problems(400, 401, 413, 415) },
      },
    },
    async (request) => {
      const principal = principalOf(request);
      await accounts.setDisplayName(principal.userId, request.body.displayName);
      return accounts.me(principal);
    },
  );

  app.delete(
    '/v1/me',
    {
      ...authenticated,
      schema: {
        tags: ['account'],
        summary: 'Delete my account and everything that belongs to it',
        description: 'Devices, tokens, pairings, codes and taps (both directions) are deleted; partners see the pairing end.',
        security: bearerSecurity,
        response: { 204: NoContent, ...problems(401) },
      },
    },
    async (request, reply) => {
      await accounts.delete(principalOf(request).userId);
      return reply.code(204).send(null);
    },
  );
}
