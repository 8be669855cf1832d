import type { FastifyRequest } from 'fastify';
import { AppError } from '../errors.ts';
import type { AuthService, Principal } from '../modules/auth/service.ts';

declare module 'fastify' {
  interface FastifyRequest {
    /** The authenticated device, set by the auth hook on protected routes. */
    principal: Principal | null;
  }
}

const BEARER = /^Bearer ([A-Za-z0-9._~+/=-]+)$/i;

function bearerToken(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization;
  if (header === undefined) return undefined;
  const match = BEARER.exec(header.trim());
  if (!match) throw new AppError('INVALID_TOKEN', 'Authorization must be "Bearer <access token>"');
  return match[1];
}

/** onRequest hook for protected routes: runs before the body is even read. */
export function requireAuth(auth: AuthService) {
  return async (request: FastifyRequest): Promise<void> => {
    const token = bearerToken(request);
    if (token === undefined) throw new AppError('UNAUTHORIZED', 'Send Authorization: Bearer <access token>');
    request.principal = await auth.authenticate(token);
  };
}

/** For the WebSocket upgrade: a header is optional (browsers authenticate in-band), but a bad one is refused. */
export function optionalAuth(auth: AuthService) {
  return async (request: FastifyRequest): Promise<void> => {
    const token = bearerToken(request);
    if (token !== undefined) request.principal = await auth.authenticate(token);
  };
}

export function principalOf(request: FastifyRequest): Principal {
  if (!request.principal) throw new AppError('UNAUTHORIZED', 'Send Authorization: Bearer <access token>');
  return request.principal;
}

export const bearerSecurity = [{ bearerAuth: [] }];
