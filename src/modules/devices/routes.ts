import type { AppContext } from '../../context.ts';
import type { App } from '../../http/app-type.ts';
import { bearerSecurity, principalOf, requireAuth } from '../../http/auth.ts';
import { NoContent, problems } from '../../http/schemas.ts';
import { NewDeviceBody, SessionSchema } from '../auth/schemas.ts';
import { toSessionView } from '../auth/service.ts';
import { DeviceParams, PushTokenBody } from './schemas.ts';

export function deviceRoutes(app: App, ctx: AppContext): void {
  const { auth, devices } = ctx.services;
  const authenticated = { onRequest: requireAuth(auth) };

  app.post(
    '/v1/devices',
    {
      ...authenticated,
      schema: {
        tags: ['devices'],
        summary: 'Add another device to my account (the phone hands these credentials to its watch)',
        security: bearerSecurity,
        body: NewDeviceBody,
        response: { 201: SessionSchema, ...problems(400, 401, 413, 415) },
      },
    },
    async (request, reply) => {
      const session = await auth.addDevice(principalOf(request).userId, request.body);
      return reply.code(201).send(toSessionView(session));
    },
  );

  app.delete(
    '/v1/devices/:id',
    {
      ...authenticated,
      schema: {
        tags: ['devices'],
        summary: 'Remove one of my devices (its tokens stop working, its sockets close)',
        security: bearerSecurity,
        params: DeviceParams,
        response: { 204: NoContent, ...problems(400, 401, 404) },
      },
    },
    async (request, reply) => {
      await devices.remove(principalOf(request).userId, request.params.id, 'removed');
      return reply.code(204).send(null);
    },
  );

  app.put(
    '/v1/devices/current/push-token',
    {
      ...authenticated,
      schema: {
        tags: ['devices'],
        summary: "Register this device's APNs token",
        security: bearerSecurity,
        body: PushTokenBody,
        response: { 204: NoContent, ...problems(400, 401, 413, 415) },
      },
    },
    async (request, reply) => {
      await devices.setPushToken(principalOf(request).deviceId, request.body.token, request.body.environment);
      return reply.code(204).send(null);
    },
  );

  app.delete(
    '/v1/devices/current/push-token',
    {
      ...authenticated,
      schema: {
        tags: ['devices'],
        summary: "Forget this device's push token (no more pushes to it)",
        security: bearerSecurity,
        response: { 204: NoContent, ...problems(401) },
      },
    },
    async (request, reply) => {
      await devices.clearPushToken(principalOf(request).deviceId);
      return reply.code(204).send(null);
    },
  );
}
