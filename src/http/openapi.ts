import type { SwaggerOptions } from '@fastify/swagger';
import packageJson from '../../package.json' with { type: 'json' };

/** One source of truth for the version: the package's. */
export const API_VERSION: string = packageJson.version;

/** Rendered as Markdown by /docs; the links are documents the service serves (see reference.ts). */
const DESCRIPTION = [
  'The backend of Navi: accounts and devices, pairing, taps and their history.',
  '',
  'Real-time delivery is the WebSocket at `/v1/ws`: see [the WebSocket protocol](/docs/websocket.md) and its',
  '[AsyncAPI document](/docs/asyncapi.json). How a tap reaches each device (socket, acks, push) is in',
  '[delivery](/docs/delivery.md) and [push](/docs/push.md).',
  '',
  'Errors are [RFC 9457](https://www.rfc-editor.org/rfc/rfc9457) problem documents with a stable `code`:',
  '[every code and what to do about it](/docs/errors.md).',
  '',
  'This document is served at [/openapi.json](/openapi.json).',
].join('\n');

/** The OpenAPI document's frame; every path in it comes from the route schemas. */
export function openApiInfo(): SwaggerOptions {
  return {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Navi API',
        version: API_VERSION,
        description: DESCRIPTION,
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
