import { readFile } from 'node:fs/promises';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import { Type } from 'typebox';
import { notFound } from '../errors.ts';
import type { App } from './app-type.ts';
import { openApiInfo } from './openapi.ts';

/**
 * The API's self-description. `/openapi.json` is always served: client
 * generators and contract checks fetch it, and it tells nothing the API
 * does not. The interactive reference at `/docs`, its assets and the
 * hand-written documents its description links to are served unless
 * DOCS_ENABLED=false.
 */
export async function registerApiReference(app: App, options: { docsEnabled: boolean }): Promise<void> {
  await app.register(swagger, openApiInfo());
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
  if (!options.docsEnabled) return;

  await app.register(swaggerUi, {
    routePrefix: '/docs',
    // Navi's name where the framework's logo would be, and the document's public address, not the plugin's /docs/json.
    logo: { type: 'image/svg+xml', content: NAVI_WORDMARK, href: '/docs', target: '_self' },
    theme: {
      title: 'Navi API reference',
      favicon: [{ filename: 'navi.svg', rel: 'icon', sizes: 'any', type: 'image/svg+xml', content: NAVI_ICON }],
    },
    uiConfig: { deepLinking: true, urls: [{ url: '/openapi.json', name: 'Navi API' }] },
  });

  app.get(
    '/docs/:document',
    {
      schema: {
        hide: true,
        params: Type.Object({ document: Type.String({ enum: Object.keys(LINKED_DOCUMENTS) }) }),
        response: { 200: Type.String() },
      },
      // A document name outside the list is simply not found, not invalid input.
      attachValidation: true,
    },
    async (request, reply) => {
      const type = LINKED_DOCUMENTS[request.params.document];
      if (request.validationError || type === undefined) throw notFound('Document');
      let text: string;
      try {
        text = await readFile(new URL(`../../docs/${request.params.document}`, import.meta.url), 'utf8');
      } catch {
        // A deployment that left docs/ behind still answers with a problem document.
        throw notFound('Document');
      }
      return reply.type(type).header('x-content-type-options', 'nosniff').send(text);
    },
  );
}

/**
 * The documents the API description links to (see openapi.ts), served from
 * docs/ so the links work wherever the service runs, offline included.
 * Markdown goes out as plain text, which every browser shows rather than
 * downloads.
 */
const LINKED_DOCUMENTS: Record<string, string | undefined> = {
  'websocket.md': 'text/plain; charset=utf-8',
  'delivery.md': 'text/plain; charset=utf-8',
  'push.md': 'text/plain; charset=utf-8',
  'errors.md': 'text/plain; charset=utf-8',
  'asyncapi.json': 'application/json; charset=utf-8',
};

const NAVI_WORDMARK = Buffer.from(
  '<svg xmlns="http://www.w3.org/2000/svg" width="96" height="40" viewBox="0 0 96 40">' +
    '<text x="0" y="29" fill="#ffffff" font-family="-apple-system, BlinkMacSystemFont, Segoe UI, Helvetica, Arial, sans-serif" ' +
    'font-size="26" font-weight="700">Navi</text></svg>',
);

const NAVI_ICON = Buffer.from(
  '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32"><circle cx="16" cy="16" r="15" fill="#e0457b"/>' +
    '<text x="16" y="22.5" fill="#ffffff" font-family="Helvetica, Arial, sans-serif" font-size="18" font-weight="700" ' +
    'text-anchor="middle">N</text></svg>',
);
