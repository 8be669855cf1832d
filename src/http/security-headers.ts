import type { IncomingMessage } from 'node:http';
import cors from '@fastify/cors';
import helmet from '@fastify/helmet';
import type { App } from './app-type.ts';

/**
 * Content-Security-Policy per kind of response. API answers are JSON that no
 * browser should render, frame or run anything from. The interactive
 * reference at /docs (Swagger UI) is the one HTML page: its scripts, styles,
 * images and the "try it out" requests all come from this origin, and it may
 * not be framed either (clickjacking).
 */
const API_POLICY: Record<string, string> = {
  'default-src': "'none'",
  'base-uri': "'none'",
  'form-action': "'none'",
  'frame-ancestors': "'none'",
};
const DOCS_POLICY: Record<string, string> = {
  'default-src': "'self'",
  'base-uri': "'self'",
  'connect-src': "'self'",
  'font-src': "'self' data:",
  'form-action': "'self'",
  'frame-ancestors': "'none'",
  'img-src': "'self' data:",
  'object-src': "'none'",
  'script-src': "'self'",
  'script-src-attr': "'none'",
  'style-src': "'self'",
};
export const DOCS_PREFIX = '/docs';

const isDocs = (request: IncomingMessage) => request.url === DOCS_PREFIX || (request.url?.startsWith(`${DOCS_PREFIX}/`) ?? false);
const directives = Object.fromEntries(
  [...new Set([...Object.keys(API_POLICY), ...Object.keys(DOCS_POLICY)])].map((name) => [
    name,
    [(request: IncomingMessage) => (isDocs(request) ? DOCS_POLICY[name] : API_POLICY[name]) ?? "'none'"],
  ]),
);

/** One year, the usual HSTS lifetime; sent only on answers that came over HTTPS. */
const HSTS = 'max-age=31536000; includeSubDomains';

/**
 * Security headers on every answer (helmet), HSTS where it belongs, no
 * caching of API answers (they carry tokens and personal data), and CORS only
 * for the origins an operator lists.
 */
export async function installSecurityHeaders(app: App, options: { corsOrigins: string[] }): Promise<void> {
  await app.register(helmet, {
    contentSecurityPolicy: { useDefaults: false, directives },
    // HSTS is set below, only over HTTPS: over plain HTTP it means nothing,
    // and on a development machine it would pin localhost to HTTPS.
    strictTransportSecurity: false,
    xFrameOptions: { action: 'deny' },
    referrerPolicy: { policy: 'no-referrer' },
    crossOriginResourcePolicy: { policy: 'same-origin' },
  });
  app.addHook('onRequest', async (request, reply) => {
    // request.protocol reads X-Forwarded-Proto only from trusted proxies (TRUST_PROXY).
    if (request.protocol === 'https') reply.header('strict-transport-security', HSTS);
    if (request.url.startsWith('/v1/')) reply.header('cache-control', 'no-store');
  });
  if (options.corsOrigins.length > 0) {
    await app.register(cors, {
      // Exact origins only, never reflected or matched by pattern.
      origin: options.corsOrigins,
      methods: ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'],
      allowedHeaders: ['authorization', 'content-type', 'x-request-id'],
      exposedHeaders: ['retry-after', 'x-request-id'],
      // Bearer tokens, no cookies: credentialed requests are never needed.
      credentials: false,
      maxAge: 600,
    });
  }
}
