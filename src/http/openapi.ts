import type { SwaggerOptions } from '@fastify/swagger';

/** The OpenAPI document's frame; every path in it comes from the route schemas. */
export function openApiInfo(): SwaggerOptions {
  return {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Navi API',
        version: '1.0.0',
        description:
          'The backend of Navi: accounts and devices, pairing, taps and their history. Real-time delivery is the WebSocket at /v1/ws (docs/websocket.md). Errors are RFC 9457 problem documents with a stable `code` (docs/errors.md).',
      },
      tags: [
        { name: 'auth', description: 'Anonymous accounts and device tokens' },
        { name: 'devices', description: "A user's devices and their push tokens" },
        { name: 'account', description: 'Me' },
        { name: 'pairing', description: 'Becoming partners with a short code' },
        { name: 'taps', description: 'Sending taps, history, acknowledgements' },
        { name: 'operations', description: 'Health' },
      ],
      components: {
        securitySchemes: { bearerAuth: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' } },
      },
    },
    refResolver: { buildLocalReference: (json, _baseUri, _fragment, i) => (typeof json.$id === 'string' ? json.$id : `def-${i}`) },
  };
}
