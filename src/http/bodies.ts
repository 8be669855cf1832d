import type { FastifyRequest, RouteOptions } from 'fastify';
import { Type } from 'typebox';
import { AppError } from '../errors.ts';
import type { App } from './app-type.ts';
import { problems } from './schemas.ts';

/** A request announces a body when it has a non-zero Content-Length or any Transfer-Encoding. */
function announcesBody(request: FastifyRequest): boolean {
  const length = request.headers['content-length'];
  return request.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
}

async function refuseBody(request: FastifyRequest): Promise<void> {
  if (announcesBody(request)) throw new AppError('INVALID_INPUT', 'This request takes no body; send none (an empty body is fine)');
  // With no body there is nothing to parse, so its announced type (even an
  // empty or malformed one, which Fastify would answer 415) does not matter.
  delete request.headers['content-type'];
}

/** `type: null` is how the OpenAPI document says "no body" (as for 204). */
const TIMEOUT_RESPONSE = Type.Null({
  description:
    'The request (headers and body) did not arrive within REQUEST_TIMEOUT_SECONDS (15 s by default). Sent by the HTTP server itself, without a body; the connection is closed.',
});

/**
 * Routes declare whether they take a body (a `body` schema) and the HTTP
 * layer holds them to it, the same way on every route: a route without one
 * refuses any body before reading it (400), whatever its content type or
 * size, instead of parsing it and answering 400, 413 or 415 depending on what
 * was sent. Registered before the routes; it also documents what it adds, so
 * every status a route can answer is in the OpenAPI document.
 */
export function installBodyRules(app: App): void {
  app.addHook('onRoute', (route: RouteOptions) => {
    const schema = route.schema as { body?: unknown; response?: Record<string, unknown> } | undefined;
    const takesBody = schema?.body !== undefined;
    if (!takesBody) route.preParsing = [...asArray(route.preParsing), refuseBody];
    if (schema?.response) {
      if (!takesBody) schema.response[400] ??= problems(400)[400];
      schema.response[408] ??= TIMEOUT_RESPONSE;
    }
  });
}

const asArray = <T>(value: T | T[] | undefined): T[] => (value === undefined ? [] : Array.isArray(value) ? value : [value]);
