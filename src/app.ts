import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyRequest } from 'fastify';
import type { AppContext } from './context.ts';
import type { App } from './http/app-type.ts';
import { fastifyTrustProxy } from './http/client-address.ts';
import { installBodyRules } from './http/bodies.ts';
import { installErrorHandling, sendProblem } from './http/error-handler.ts';
import { explainRaces } from './http/races.ts';
import { requestIdOf } from './http/request-id.ts';
import { ProblemSchema } from './http/schemas.ts';
import { installSecurityHeaders } from './http/security-headers.ts';
import { createAjv } from './http/validation.ts';
import { registerApiReference } from './http/reference.ts';
import { accountRoutes } from './modules/accounts/routes.ts';
import { authRoutes } from './modules/auth/routes.ts';
import { deviceRoutes } from './modules/devices/routes.ts';
import { installLoadShedding } from './http/load-shedding.ts';
import { metricsExposure, registerMetricsRoute } from './modules/health/metrics-route.ts';
import { healthRoutes } from './modules/health/routes.ts';
import { pairingRoutes } from './modules/pairing/routes.ts';
import { tapRoutes } from './modules/taps/routes.ts';
import { logRoutes } from './delivery/routes.ts';
import { registerGateway } from './realtime/gateway.ts';

/** Every body this API takes is a few hundred bytes. */
export const BODY_LIMIT_BYTES = 4096;

export interface BuildOptions {
  /** Called for every 5xx (error reporting). */
  onServerError?: (error: unknown, request: FastifyRequest) => void;
}

/** Builds the Fastify app on a context. Never listens: server.ts does, tests use inject or listen themselves. */
export async function buildApp(ctx: AppContext, options: BuildOptions = {}): Promise<App> {
  const app = Fastify({
    loggerInstance: ctx.logger as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true, requestIdLogLabel: 'requestId' }),
    genReqId: requestIdOf,
    trustProxy: fastifyTrustProxy(ctx.config.trustProxy),
    bodyLimit: BODY_LIMIT_BYTES,
    // A slow-loris client must not hold a socket: the whole request (headers
    // and body) has to arrive in time. Node checks its deadlines only every
    // connectionsCheckingInterval (30 s by default) and honours them only when
    // given at creation, which let a trickled body live ~90 s; given here and
    // checked every second, it is cut within a second of the deadline.
    requestTimeout: ctx.config.requestTimeoutMs,
    http: {
      requestTimeout: ctx.config.requestTimeoutMs,
      headersTimeout: ctx.config.requestTimeoutMs,
      connectionsCheckingInterval: 1000,
    },
    connectionTimeout: 0,
    // Longer than the ~60 s idle timeout of common load balancers, so they close first.
    keepAliveTimeout: 72_000,
    maxRequestsPerSocket: 0,
    return503OnClosing: true,
    routerOptions: { ignoreTrailingSlash: true, maxParamLength: 200 },
    // A URL the router cannot even parse (bad percent-escape, an over-long
    // segment) is still answered with a problem document.
    frameworkErrors: (error, request, reply) => {
      reply.header('x-request-id', request.id);
      const detail = error.code === 'FST_ERR_MAX_PARAM_LENGTH' ? 'A path segment is too long' : 'The URL is not valid';
      void sendProblem(reply, request, { code: 'INVALID_INPUT', detail });
    },
  }).withTypeProvider<TypeBoxTypeProvider>();

  const strict = createAjv('strict');
  const coercing = createAjv('coercing');
  app.setValidatorCompiler(({ schema, httpPart }) => (httpPart === 'body' ? strict : coercing).compile(schema));
  installJsonParser(app);
  installErrorHandling(app, options.onServerError ?? (() => {}), explainRaces(ctx.services.devices));
  installRequestLogging(app, ctx);
  app.addSchema(ProblemSchema);
  // Security: before every route, so each one gets the headers and the body rules.
  installBodyRules(app);
  await installSecurityHeaders(app, { corsOrigins: ctx.config.corsOrigins });
  // Operations: load shedding first, so an overloaded instance refuses before doing any work.
  await installLoadShedding(app, ctx);
  if (metricsExposure(ctx) === 'main') registerMetricsRoute(app, ctx);

  await registerApiReference(app, { docsEnabled: ctx.config.docsEnabled });

  healthRoutes(app, ctx);
  authRoutes(app, ctx);
  deviceRoutes(app, ctx);
  accountRoutes(app, ctx);
  pairingRoutes(app, ctx);
  tapRoutes(app, ctx);
  logRoutes(app, ctx);
  await registerGateway(app, ctx);
  return app;
}

/**
 * JSON bodies only, with one leniency: an empty body (a client that always sends
 * Content-Type: application/json) is no body, so bodiless POSTs work.
 */
function installJsonParser(app: App): void {
  const parseJson = app.getDefaultJsonParser('error', 'error');
  // Only JSON: a text/plain body is answered 415, not parsed into a string.
  app.removeContentTypeParser(['application/json', 'text/plain']);
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    if (body === '') return done(null, undefined);
    return parseJson(request, body as string, done);
  });
}

/** Probes scraped every few seconds would drown the log. */
const QUIET_ROUTES = new Set(['/health', '/livez', '/readyz', '/metrics']);

/**
 * One line per request, with the route pattern (never a raw URL that may
 * carry a pairing code) and, once authenticated, who asked: the user and
 * device ids (never the token), so support can follow one person's requests.
 */
function installRequestLogging(app: App, ctx: AppContext): void {
  app.addHook('onRequest', async (request, reply) => {
    reply.header('x-request-id', request.id);
    if (request.headers.upgrade?.toLowerCase() === 'websocket') ctx.metrics.wsConnectionAttempts.inc();
  });
  app.addHook('onResponse', async (request, reply) => {
    const route = request.routeOptions.url ?? 'unmatched';
    const seconds = reply.elapsedTime / 1000;
    ctx.metrics.httpRequestDuration.observe({ method: request.method, route, status: reply.statusCode }, seconds);
    const level = QUIET_ROUTES.has(route) ? 'debug' : 'info';
    const who = request.principal ? { userId: request.principal.userId, deviceId: request.principal.deviceId } : {};
    request.log[level](
      { method: request.method, route, status: reply.statusCode, ms: Math.round(reply.elapsedTime * 10) / 10, ...who },
      'request',
    );
  });
}
