import type { AppContext } from '../../context.ts';
import type { App } from '../../http/app-type.ts';
import { bearerSecurity, principalOf, requireAuth } from '../../http/auth.ts';
import { NoContent, problems } from '../../http/schemas.ts';
import { AckBody, ListTapsQuery, SendTapBody, TapDetailSchema, TapEnvelope, TapPageSchema, TapParams } from './schemas.ts';

export function tapRoutes(app: App, ctx: AppContext): void {
  const { auth, taps, delivery } = ctx.services;
  const authenticated = { onRequest: requireAuth(auth) };

  app.post(
    '/v1/taps',
    {
      ...authenticated,
      schema: {
        tags: ['taps'],
        summary: 'Send a tap to a partner',
        description:
          'The tap is committed before the response. With a client-chosen `id`, a retry returns the stored tap with 200 instead of creating a second one.',
        security: bearerSecurity,
        body: SendTapBody,
        response: {
          201: { ...TapEnvelope, description: 'Created' },
          200: { ...TapEnvelope, description: 'Already existed (a retry with the same id)' },
          ...problems(400, 401, 403, 413, 415, 422, 429),
        },
      },
    },
    async (request, reply) => {
      const { tap, created } = await taps.send(principalOf(request), request.body, 'http');
      return reply.code(created ? 201 : 200).send({ tap });
    },
  );

  app.get(
    '/v1/taps',
    {
      ...authenticated,
      schema: {
        tags: ['taps'],
        summary: 'My sent and received taps',
        description: 'Newest first, paging back with `before`; or oldest first from `after`, for catching up.',
        security: bearerSecurity,
        querystring: ListTapsQuery,
        response: { 200: TapPageSchema, ...problems(400, 401) },
      },
    },
    async (request) => taps.list(principalOf(request).userId, request.query),
  );

  app.get(
    '/v1/taps/:id',
    {
      ...authenticated,
      schema: {
        tags: ['taps'],
        summary: 'One tap with its delivery to each device of the recipient',
        security: bearerSecurity,
        params: TapParams,
        response: { 200: TapDetailSchema, ...problems(400, 401, 404) },
      },
    },
    async (request) => taps.detail(principalOf(request).userId, request.params.id),
  );

  app.post(
    '/v1/taps/:id/ack',
    {
      ...authenticated,
      schema: {
        tags: ['taps'],
        summary: 'Acknowledge a received tap from this device (for devices without a socket, e.g. after a push)',
        description: 'Recipient only, idempotent; acks only move forward (delivered, then seen).',
        security: bearerSecurity,
        params: TapParams,
        body: AckBody,
        response: { 204: NoContent, ...problems(400, 401, 404, 413, 415) },
      },
    },
    async (request, reply) => {
      await delivery.ack(principalOf(request), request.params.id, request.body.status, 'http');
      return reply.code(204).send(null);
    },
  );
}
