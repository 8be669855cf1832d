import { Type } from 'typebox';
import type { AppContext } from '../context.ts';
import type { App } from '../http/app-type.ts';
import { bearerSecurity, principalOf, requireAuth } from '../http/auth.ts';
import { Cursor, problems } from '../http/schemas.ts';
import { LogMessageSchema } from './messages.ts';

const LogQuery = Type.Object(
  {
    after: Type.Optional(Cursor('The newest cursor you hold; "0" or absent for the whole log')),
    limit: Type.Integer({ minimum: 1, maximum: 500, default: 100 }),
  },
  { additionalProperties: false },
);

const LogPage = Type.Object({
  entries: Type.Array(LogMessageSchema, { description: 'Oldest first, consecutive cursors from after + 1' }),
  cursor: Cursor('The last entry of this page (or `after` when it is empty): pass it as `after` next time'),
  hasMore: Type.Boolean({ description: 'More entries follow: ask again from cursor' }),
});

/** The delivery log over HTTP: what the WebSocket replays, for a device that cannot hold a socket. */
export function logRoutes(app: App, ctx: AppContext): void {
  const { auth, delivery } = ctx.services;
  app.get(
    '/v1/log',
    {
      onRequest: requireAuth(auth),
      schema: {
        tags: ['taps'],
        summary: 'My delivery log after a cursor (taps, receipts, pairing changes), as the WebSocket replays it',
        description:
          'For devices that cannot hold a socket (a watch woken by a push): the same entries, the same cursors and the same rules as the WebSocket (docs/delivery.md).',
        security: bearerSecurity,
        querystring: LogQuery,
        response: { 200: LogPage, ...problems(400, 401) },
      },
    },
    async (request) => {
      const after = Number(request.query.after ?? 0);
      const entries = await delivery.readLog(principalOf(request).userId, after, request.query.limit + 1);
      const page = entries.slice(0, request.query.limit);
      return { entries: page, cursor: page.at(-1)?.cursor ?? String(after), hasMore: entries.length > request.query.limit };
    },
  );
}
