import { Type } from 'typebox';
import type { AppContext } from '../../context.ts';
import type { App } from '../../http/app-type.ts';
import { bearerSecurity, principalOf, requireAuth } from '../../http/auth.ts';
import { NoContent, problems } from '../../http/schemas.ts';
import { clientNetwork } from '../../http/client-address.ts';
import { enforceLimit } from '../../rate-limit.ts';
import { PairingGuessBudget } from './guess-budget.ts';
import { CodeParams, PairingCodeSchema, PairingCodeStatusSchema, PairingParams, PairingSchema, RedeemBody } from './schemas.ts';

export function pairingRoutes(app: App, ctx: AppContext): void {
  const { auth, pairing } = ctx.services;
  const authenticated = { onRequest: requireAuth(auth) };
  const guesses = new PairingGuessBudget({ limiter: ctx.rateLimiter, metrics: ctx.metrics, config: ctx.config.pairing });
  // Creating and redeeming share one budget per user; what stands between a
  // guesser with many accounts and the 2^40 code space is the failed-guess
  // budget per network and for everyone (guess-budget.ts).
  const limit = (userId: string) =>
    enforceLimit(ctx.rateLimiter, ctx.metrics, {
      name: 'pairing',
      key: userId,
      max: ctx.config.rateLimits.pairingPerMinute,
      windowMs: 60_000,
      message: 'Too many pairing attempts; wait a minute',
    });

  app.post(
    '/v1/pairing-codes',
    {
      ...authenticated,
      schema: {
        tags: ['pairing'],
        summary: 'Create a pairing code to show to my partner',
        security: bearerSecurity,
        response: { 201: PairingCodeSchema, ...problems(401, 429) },
      },
    },
    async (request, reply) => {
      const { userId } = principalOf(request);
      await limit(userId);
      const { code, expiresAt } = await pairing.createCode(userId);
      return reply.code(201).send({ code, expiresAt: new Date(expiresAt).toISOString() });
    },
  );

  app.get(
    '/v1/pairing-codes/:code',
    {
      ...authenticated,
      schema: {
        tags: ['pairing'],
        summary: 'Status of a code I created (poll it to learn when my partner typed it)',
        security: bearerSecurity,
        params: CodeParams,
        response: { 200: PairingCodeStatusSchema, ...problems(400, 401, 404) },
      },
    },
    async (request) => pairing.codeStatus(principalOf(request).userId, request.params.code),
  );

  app.delete(
    '/v1/pairing-codes/:code',
    {
      ...authenticated,
      schema: {
        tags: ['pairing'],
        summary: 'Cancel a code I created',
        security: bearerSecurity,
        params: CodeParams,
        response: { 204: NoContent, ...problems(400, 401, 404) },
      },
    },
    async (request, reply) => {
      await pairing.cancelCode(principalOf(request).userId, request.params.code);
      return reply.code(204).send(null);
    },
  );

  app.post(
    '/v1/pairings',
    {
      ...authenticated,
      schema: {
        tags: ['pairing'],
        summary: "Redeem my partner's code: we become partners",
        security: bearerSecurity,
        body: RedeemBody,
        response: { 201: Type.Object({ pairing: PairingSchema }), ...problems(400, 401, 404, 409, 410, 413, 415, 422, 429) },
      },
    },
    async (request, reply) => {
      const { userId } = principalOf(request);
      await limit(userId);
      const paired = await guesses.around(clientNetwork(request.ip), () => pairing.redeem(userId, request.body.code));
      return reply.code(201).send({ pairing: paired });
    },
  );

  app.get(
    '/v1/pairings',
    {
      ...authenticated,
      schema: {
        tags: ['pairing'],
        summary: 'My partners',
        security: bearerSecurity,
        response: { 200: Type.Object({ pairings: Type.Array(PairingSchema) }), ...problems(401) },
      },
    },
    async (request) => ({ pairings: await pairing.list(principalOf(request).userId) }),
  );

  app.delete(
    '/v1/pairings/:id',
    {
      ...authenticated,
      schema: {
        tags: ['pairing'],
        summary: 'Unpair (either partner may); the tap history stays',
        security: bearerSecurity,
        params: PairingParams,
        response: { 204: NoContent, ...problems(400, 401, 404) },
      },
    },
    async (request, reply) => {
      await pairing.remove(principalOf(request).userId, request.params.id);
      return reply.code(204).send(null);
    },
  );
}
