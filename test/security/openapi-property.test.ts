import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import type { InjectOptions } from 'fastify';
import { startTestApp, type TestApp } from '../support/app.ts';
import { pair, sendTap, signUp, type User } from '../support/clients.ts';
import { OpenApi, type Operation, type Schema } from '../support/openapi.ts';
import * as arb from '../support/properties.ts';

/**
 * Hostile requests generated from the OpenAPI document itself, for every
 * operation in it: parameters and bodies that follow the schemas, that break
 * them in one place, or that are noise; with a valid, a fresh, a garbage or
 * no token. Whatever is sent, the answer is never a 5xx, its status is one
 * the operation documents, and its body matches the documented schema. So
 * the document is a contract the server keeps, not a description of it.
 */
const RUNS = 400;
const UNLIMITED = {
  RATE_LIMIT_AUTH_PER_MINUTE: '1000000',
  RATE_LIMIT_PAIRING_PER_MINUTE: '1000000',
  RATE_LIMIT_TAPS_PER_MINUTE: '10000000',
  PAIRING_FAILED_GUESSES_PER_NETWORK_PER_HOUR: '1000000',
  PAIRING_FAILED_GUESSES_PER_MINUTE: '10000000',
};
/** Operations that end the caller's session: each run of them gets a user of its own. */
const DESTRUCTIVE = new Set(['DELETE /v1/me', 'POST /v1/auth/logout', 'DELETE /v1/devices/{id}']);

/** Values a schema accepts (the keywords this API's document uses). */
function valid(schema: Schema): fc.Arbitrary<unknown> {
  if (schema.const !== undefined) return fc.constant(schema.const);
  if (Array.isArray(schema.enum)) return fc.constantFrom(...(schema.enum as unknown[]));
  const union = (schema.anyOf ?? schema.oneOf) as Schema[] | undefined;
  if (union) return fc.oneof(...union.map(valid));
  const min = (schema.minLength as number | undefined) ?? 0;
  const max = (schema.maxLength as number | undefined) ?? 64;
  switch (schema.type) {
    case 'null':
      return fc.constant(null);
    case 'boolean':
      return fc.boolean();
    case 'integer':
      return fc.integer({ min: (schema.minimum as number | undefined) ?? -1e6, max: (schema.maximum as number | undefined) ?? 1e6 });
    case 'string':
      if (schema.format === 'uuid') return arb.anyUuid;
      if (schema.format === 'date-time') return fc.date({ noInvalidDate: true }).map((d) => d.toISOString());
      if (typeof schema.pattern === 'string') {
        return fc.stringMatching(new RegExp(schema.pattern)).filter((s) => [...s].length >= min && [...s].length <= max);
      }
      return arb.anyText(min, max);
    case 'object': {
      const properties = (schema.properties ?? {}) as Record<string, Schema>;
      const record = Object.fromEntries(Object.entries(properties).map(([name, s]) => [name, valid(s)]));
      return fc.record(record, { requiredKeys: (schema.required as string[] | undefined) ?? [] });
    }
    default:
      return arb.smallJson;
  }
}

/** A valid object with one thing wrong: a field missing, of another shape, or one too many; or anything at all. */
function hostileBody(schema: Schema): fc.Arbitrary<unknown> {
  const broken = valid(schema).chain((value) => {
    if (typeof value !== 'object' || value === null) return fc.constant(value);
    const keys = Object.keys(value);
    return fc.oneof(
      keys.length ? fc.constantFrom(...keys).map((k) => ({ ...value, [k]: undefined })) : fc.constant(value),
      keys.length ? fc.tuple(fc.constantFrom(...keys), arb.jsonOf(2)).map(([k, v]) => ({ ...value, [k]: v })) : fc.constant(value),
      fc.tuple(arb.safeKey, arb.smallJson).map(([k, v]) => ({ ...value, [k]: v })),
    );
  });
  return fc.oneof(broken, arb.jsonOf(3));
}

interface Request {
  op: Operation;
  auth: 'valid' | 'none' | 'garbage';
  path: Record<string, string>;
  query: string;
  payload: { payload?: string | Buffer; contentType?: string };
}

describe('every operation of the OpenAPI document under hostile requests', () => {
  let t: TestApp;
  let api: OpenApi;
  let alex: User;
  const known: string[] = [];
  before(async () => {
    t = await startTestApp({ env: UNLIMITED });
    api = await OpenApi.of(t.app);
    alex = await signUp(t);
    const sam = await signUp(t);
    known.push(await pair(alex, sam), alex.deviceId, sam.userId);
    known.push((await sendTap(sam, alex)).id, (await sendTap(alex, sam)).id);
  });
  after(() => t.close());

  const requestFor = (op: Operation): fc.Arbitrary<Request> => {
    const pathParams = op.parameters.filter((p) => p.in === 'path');
    const queryParams = op.parameters.filter((p) => p.in === 'query');
    const path = fc.record(
      Object.fromEntries(
        pathParams.map((p) => [
          p.name,
          fc.oneof({ weight: 3, arbitrary: valid(p.schema).map(String) }, fc.constantFrom(...known), arb.segment),
        ]),
      ),
    ) as fc.Arbitrary<Record<string, string>>;
    const validQuery = fc
      .record(Object.fromEntries(queryParams.map((p) => [p.name, valid(p.schema).map(String)])), { requiredKeys: [] })
      .map((q) => new URLSearchParams(q as Record<string, string>).toString());
    const query = queryParams.length
      ? fc.oneof({ weight: 2, arbitrary: validQuery }, arb.anyQuery)
      : fc.oneof({ weight: 5, arbitrary: fc.constant('') }, arb.anyQuery);
    const json = (value: unknown) => ({ payload: JSON.stringify(value), contentType: 'application/json' });
    const payload = op.body
      ? fc.oneof(
          { weight: 3, arbitrary: valid(op.body).map(json) },
          { weight: 3, arbitrary: hostileBody(op.body).map(json) },
          arb.anyPayload,
        )
      : fc.oneof({ weight: 4, arbitrary: fc.constant({}) }, arb.anyPayload);
    const auth = fc.constantFrom<Request['auth']>('valid', 'valid', 'valid', 'none', 'garbage');
    return fc.record({ op: fc.constant(op), auth, path, query, payload });
  };

  test('no 5xx, every status documented, every body as documented', async () => {
    assert.ok(api.operations.length >= 20, `${api.operations.length} operations`);
    const seen = new Map<string, Set<number>>();
    const requests = fc.constantFrom(...api.operations).chain(requestFor);
    await fc.assert(
      fc.asyncProperty(requests, async (r) => {
        const name = `${r.op.method} ${r.op.path}`;
        let token = alex.accessToken;
        if (DESTRUCTIVE.has(name)) token = (await signUp(t)).accessToken;
        const url =
          r.op.path.replace(/\{(\w+)\}/g, (_, key: string) => encodeURIComponent(r.path[key] ?? '')) + (r.query ? `?${r.query}` : '');
        const headers: Record<string, string> = {};
        if (r.auth === 'valid') headers.authorization = `Bearer ${token}`;
        if (r.auth === 'garbage') headers.authorization = 'Bearer eyJhbGciOiJIUzI1NiJ9.e30.c2lnbmF0dXJl';
        if (r.payload.contentType !== undefined) headers['content-type'] = r.payload.contentType;
        const request: InjectOptions = { method: r.op.method as InjectOptions['method'], url, headers };
        if (r.payload.payload !== undefined) request.payload = r.payload.payload;
        const response = await t.app.inject(request);
        const context = `${name} ${url.slice(0, 120)} -> ${response.statusCode} ${response.body.slice(0, 200)}`;
        assert.ok(response.statusCode < 500, context);
        // A path the router could not match to this operation (e.g. a segment with "/") is no answer of it.
        if (response.statusCode === 404 && /"detail":"No route /.test(response.body)) return;
        assert.equal(
          api.mismatch(r.op, response.statusCode, response.headers['content-type'] as string | undefined, response.body),
          undefined,
          context,
        );
        seen.set(name, (seen.get(name) ?? new Set()).add(response.statusCode));
      }),
      { numRuns: RUNS },
    );
    // Every operation was exercised, most of them to more than one answer.
    assert.equal(
      seen.size,
      api.operations.length,
      [...api.operations.map((op) => `${op.method} ${op.path}`)].filter((n) => !seen.has(n)).join(', '),
    );
  });
});
