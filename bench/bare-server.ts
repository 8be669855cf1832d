import Fastify from 'fastify';
import { Type } from 'typebox';
import { createAjv } from '../src/http/validation.ts';
import { SendTapBody } from '../src/modules/taps/schemas.ts';

/**
 * The baseline for the tap benchmark: Fastify with one POST route that
 * validates the very schema of POST /v1/taps (imported, with the service's
 * strict Ajv settings) and answers 201 without authentication, database or
 * fan-out. Run as its own process by bench/taps.ts; listens on HOST:PORT.
 */
const app = Fastify({ logger: false, bodyLimit: 4096 });
const ajv = createAjv('strict');
app.setValidatorCompiler(({ schema }) => ajv.compile(schema));

app.post('/v1/taps', { schema: { body: SendTapBody, response: { 201: Type.Object({ ok: Type.Boolean() }) } } }, async (_request, reply) =>
  reply.code(201).send({ ok: true }),
);

process.once('SIGTERM', () => {
  void app.close().then(() => process.exit(0));
});

await app.listen({ host: process.env.HOST ?? '127.0.0.1', port: Number(process.env.PORT ?? 0) });
