import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import type { InjectOptions, LightMyRequestResponse } from 'fastify';
import { BODY_LIMIT_BYTES } from '../../src/app.ts';
import type { TapPage } from '../../src/modules/taps/schemas.ts';
import { startTestApp, type TestApp } from '../support/app.ts';
import { asUser, pair, sendTap, signUp, type User } from '../support/clients.ts';
import * as arb from '../support/properties.ts';
import { assertRefused, assertWellFormed, enumField, field, named, nearValid, validBody, type Body } from '../support/properties.ts';

/**
 * Property-based tests over the HTTP request schemas: whatever a client sends,
 * the answer is never a 5xx and every refusal is a problem document with a
 * catalogued code; schema-valid input from a paired user succeeds. Each
 * property checks only the response to its own request, so the runs share one
 * app (for speed) without depending on each other.
 */

const RUNS = 150;
const UNLIMITED = {
  RATE_LIMIT_AUTH_PER_MINUTE: '1000000',
  RATE_LIMIT_PAIRING_PER_MINUTE: '1000000',
  RATE_LIMIT_TAPS_PER_MINUTE: '10000000',
  PAIRING_FAILED_GUESSES_PER_NETWORK_PER_HOUR: '1000000',
  PAIRING_FAILED_GUESSES_PER_MINUTE: '10000000',
};

type Method = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

interface BodyRoute {
  method: Method;
  url: string;
  fields: Record<string, arb.FieldSpec>;
  /** Asserts the answer to a schema-valid body. */
  accepted(response: LightMyRequestResponse, body: Body): Promise<void> | void;
}

describe('HTTP request schemas under arbitrary input', () => {
  let t: TestApp;
  let alex: User;
  let sam: User;
  let tapToAlex: string;
  /** Taps alex sent with a client-chosen id (lower case, as stored): what a retry must return. */
  const alexTapIds = new Map<string, string>();

  const inject = (
    method: Method,
    url: string,
    options: { payload?: string | Buffer; contentType?: string; authorization?: string } = {},
  ) => {
    const headers: Record<string, string> = { authorization: options.authorization ?? `Bearer ${alex.accessToken}` };
    if (options.contentType !== undefined) headers['content-type'] = options.contentType;
    const request: InjectOptions = { method, url, headers };
    if (options.payload !== undefined) request.payload = options.payload;
    return t.app.inject(request);
  };
  const sendRaw = (route: BodyRoute, payload: string) => inject(route.method, route.url, { payload, contentType: 'application/json' });
  const send = (route: BodyRoute, body: Body) => sendRaw(route, JSON.stringify(body));

  /** Every route that takes input; `url()` fills its path parameter with a harmless value. */
  const routes = (): Array<{ method: Method; path: string; url: (param?: string) => string }> => {
    const route = (method: Method, path: string, harmless = () => '') =>
      named(`${method} ${path}`, { method, path, url: (param?: string) => path.replace(':param', param ?? harmless()) });
    const randomId = () => crypto.randomUUID();
    const someCode = () => 'ZZZZ-ZZZZ';
    const alexsTap = () => tapToAlex;
    return [
      route('POST', '/v1/auth/register'),
      route('POST', '/v1/auth/refresh'),
      route('POST', '/v1/devices'),
      route('PUT', '/v1/devices/current/push-token'),
      route('PATCH', '/v1/me'),
      route('POST', '/v1/pairing-codes'),
      route('GET', '/v1/pairing-codes/:param', someCode),
      route('DELETE', '/v1/pairing-codes/:param', someCode),
      route('POST', '/v1/pairings'),
      route('DELETE', '/v1/pairings/:param', randomId),
      route('POST', '/v1/taps'),
      route('GET', '/v1/taps'),
      route('GET', '/v1/taps/:param', alexsTap),
      route('POST', '/v1/taps/:param/ack', alexsTap),
      route('DELETE', '/v1/devices/:param', randomId),
    ];
  };

  const idPool = [crypto.randomUUID(), crypto.randomUUID(), crypto.randomUUID()];
  /** Every route that takes a JSON body, what each field accepts and refuses, and what a valid body gets. */
  const bodyRoutes = (): BodyRoute[] => {
    const bodyRoute = (label: string, fields: BodyRoute['fields'], accepted: BodyRoute['accepted']): BodyRoute => {
      const [method, url] = label.split(' ') as [Method, string];
      return named(label, { method, url, fields, accepted });
    };
    const status = (expected: number) => (response: LightMyRequestResponse) => assert.equal(response.statusCode, expected, response.body);
    const platform = enumField(['ios', 'watchos', 'web']);
    const name = field(arb.plainText(1, 64), fc.oneof(arb.outside(1, 64), arb.textWithControl(1, 64)), false);
    return [
      bodyRoute('POST /v1/auth/register', { platform, name }, async (response, body) => {
        assert.equal(response.statusCode, 201, response.body);
        const me = await asUser(t, response.json()).request('GET', '/v1/me');
        const devices = me.json().devices.map((d: { platform: string; name: string | null }) => [d.platform, d.name]);
        assert.deepEqual(devices, [[body.platform, body.name ?? null]]);
      }),
      bodyRoute('POST /v1/devices', { platform, name }, status(201)),
      bodyRoute('POST /v1/auth/refresh', { refreshToken: field(arb.anyText(1, 500), arb.outside(1, 4096)) }, (response) => {
        assertRefused(response, 401, 'INVALID_TOKEN');
      }),
      bodyRoute(
        'PUT /v1/devices/current/push-token',
        { provider: enumField(['apns']), token: field(arb.hexToken, arb.notHexToken), environment: enumField(['sandbox', 'production']) },
        status(204),
      ),
      bodyRoute(
        'PATCH /v1/me',
        {
          displayName: field(
            fc.oneof(arb.plainText(1, 40), fc.constant(null)),
            fc.oneof(arb.notStringOrNull, fc.constant(''), arb.anyText(41, 48), arb.textWithControl(1, 40)),
          ),
        },
        (response, body) => {
          assert.equal(response.statusCode, 200, response.body);
          // Names are trimmed, and a blank one clears it.
          assert.equal(response.json().user.displayName, (body.displayName as string | null)?.trim() || null);
        },
      ),
      bodyRoute('POST /v1/pairings', { code: field(arb.anyText(1, 32), arb.outside(1, 32)) }, (response) => {
        const problem = assertWellFormed(response);
        assert.ok(problem && ['INVALID_INPUT', 'PAIRING_CODE_NOT_FOUND'].includes(problem.code), response.body);
      }),
      bodyRoute(
        'POST /v1/taps',
        {
          // A small pool of ids comes back often, in any case: retries (same tap) and conflicts (another tap).
          id: field(fc.oneof(arb.anyUuid, fc.constantFrom(...idPool).chain(arb.inAnyCase)), arb.notUuid, false),
          to: field(fc.oneof({ weight: 3, arbitrary: arb.inAnyCase(sam.userId) }, arb.inAnyCase(alex.userId), arb.anyUuid), arb.notUuid),
          intensity: enumField(arb.INTENSITIES),
          pattern: enumField(arb.PATTERNS),
        },
        (response, body) => {
          // Ids are case-insensitive: the server stores and answers them lower case.
          const id = (body.id as string | undefined)?.toLowerCase();
          const to = (body.to as string).toLowerCase();
          const what = `${to}|${body.intensity}|${body.pattern}`;
          const stored = id === undefined ? undefined : alexTapIds.get(id);
          if (to === alex.userId) return void assertRefused(response, 403, 'NOT_PAIRED');
          if (stored !== undefined) {
            if (stored === what) return assert.equal(response.statusCode, 200, response.body);
            return void assertRefused(response, 422, 'IDEMPOTENCY_CONFLICT');
          }
          if (to !== sam.userId) return void assertRefused(response, 403, 'NOT_PAIRED');
          assert.equal(response.statusCode, 201, response.body);
          const tap = response.json().tap;
          assert.deepEqual([tap.id, tap.from, tap.to], [id ?? tap.id, alex.userId, sam.userId]);
          assert.deepEqual([tap.intensity, tap.pattern], [body.intensity, body.pattern]);
          if (id !== undefined) alexTapIds.set(id, what);
        },
      ),
      bodyRoute(`POST /v1/taps/${tapToAlex}/ack`, { status: enumField(['delivered', 'seen']) }, status(204)),
    ];
  };

  before(async () => {
    t = await startTestApp({ env: UNLIMITED });
    alex = await signUp(t);
    sam = await signUp(t);
    await pair(alex, sam);
    for (let i = 0; i < 4; i++) {
      await sendTap(alex, sam);
      tapToAlex = (await sendTap(sam, alex)).id;
    }
  });
  after(() => t.close());

  test('arbitrary bodies and content types, on every route: never a 5xx, every refusal a catalogued problem', async () => {
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...routes()), arb.anyPayload, async (route, { payload, contentType }) => {
        assertWellFormed(await inject(route.method, route.url(), { payload, contentType }));
      }),
      { numRuns: RUNS },
    );
  });

  test('arbitrary path segments: never a 5xx, every refusal a catalogued problem', async () => {
    const withParam = routes().filter((r) => r.path.includes(':param'));
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...withParam), arb.segment, fc.option(arb.anyPayload), async (route, param, body) => {
        assertWellFormed(await inject(route.method, route.url(param), body ?? {}));
      }),
      { numRuns: RUNS },
    );
  });

  test('arbitrary query strings on GET /v1/taps: never a 5xx, every refusal a catalogued problem', async () => {
    await fc.assert(
      fc.asyncProperty(arb.anyQuery, async (query) => {
        assertWellFormed(await inject('GET', `/v1/taps?${query}`));
      }),
      { numRuns: 4 * RUNS },
    );
  });

  test('arbitrary Authorization headers are 401 UNAUTHORIZED or INVALID_TOKEN, never a 5xx', async () => {
    const tampered = fc
      .tuple(fc.constantFrom(alex.accessToken, alex.refreshToken), fc.nat(), fc.constantFrom(...'AaZz09-_.'))
      .map(([token, at, char]) => {
        const i = at % token.lastIndexOf('.');
        return token.slice(0, i) + (token[i] === char ? '~' : char) + token.slice(i + 1);
      });
    const authorization = fc.oneof(
      fc.string({ maxLength: 80 }),
      fc.string({ maxLength: 80 }).map((s) => `Bearer ${s}`),
      fc.array(fc.base64String({ maxLength: 40 }), { minLength: 1, maxLength: 4 }).map((parts) => `Bearer ${parts.join('.')}`),
      tampered.map((s) => `Bearer ${s}`),
      fc.constant(`Bearer ${alex.refreshToken}`),
      fc.constant(`Basic ${alex.accessToken}`),
    );
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...routes().filter((r) => !r.path.startsWith('/v1/auth/'))),
        authorization,
        async (route, header) => {
          const problem = assertWellFormed(await inject(route.method, route.url(), { authorization: header }));
          assert.ok(problem && problem.status === 401, `accepted ${JSON.stringify(header)}`);
          assert.ok(['UNAUTHORIZED', 'INVALID_TOKEN'].includes(problem.code));
        },
      ),
      { numRuns: RUNS },
    );
  });

  test('schema-valid bodies from a paired user succeed (taps to the partner are created, retries return the same tap)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...bodyRoutes()).chain((route) => fc.tuple(fc.constant(route), validBody(route.fields))),
        async ([route, body]) => {
          const response = await send(route, body);
          assertWellFormed(response);
          await route.accepted(response, body);
        },
      ),
      { numRuns: 2 * RUNS },
    );
  });

  test('a valid body with one field missing, wrong or unknown is refused as INVALID_INPUT naming that field', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...bodyRoutes()).chain((route) => fc.tuple(fc.constant(route), nearValid(route.fields))),
        async ([route, { body, mutation }]) => {
          const response = await send(route, body);
          if (Buffer.byteLength(JSON.stringify(body)) > BODY_LIMIT_BYTES) return void assertRefused(response, 413, 'PAYLOAD_TOO_LARGE');
          const problem = assertRefused(response, 400, 'INVALID_INPUT');
          const fields = new Set(problem.errors?.map((e) => e.field));
          assert.deepEqual(fields, new Set([`body.${mutation.field}`]), `${route.method} ${route.url}: ${response.body}`);
        },
      ),
      { numRuns: RUNS },
    );
  });

  test('schema-valid queries on GET /v1/taps answer a bounded page in the promised order', async () => {
    const query = fc.record(
      {
        with: fc.oneof(arb.inAnyCase(sam.userId), arb.inAnyCase(alex.userId), arb.anyUuid),
        limit: fc.integer({ min: 1, max: 100 }),
        before: arb.cursor,
        after: arb.cursor,
      },
      { requiredKeys: [] },
    );
    await fc.assert(
      fc.asyncProperty(query, async (q) => {
        const response = await inject('GET', `/v1/taps?${new URLSearchParams(q as Record<string, string>)}`);
        if (q.before !== undefined && q.after !== undefined) return void assertRefused(response, 400, 'INVALID_INPUT');
        assert.equal(response.statusCode, 200, response.body);
        const page = response.json<TapPage>();
        const limit = q.limit ?? 50;
        const partner = q.with?.toLowerCase();
        const cursors = page.taps.map((tap) => BigInt(tap.cursor));
        assert.ok(page.taps.length <= limit);
        if (page.hasMore) assert.equal(page.taps.length, limit);
        for (const tap of page.taps) {
          assert.ok(tap.from === alex.userId || tap.to === alex.userId);
          if (partner !== undefined) assert.ok(tap.from === partner || tap.to === partner);
        }
        if (partner === sam.userId && q.after === undefined && q.before === undefined) assert.ok(page.taps.length > 0);
        const ascending = cursors.every((c, i) => i === 0 || c > cursors[i - 1]!);
        const descending = cursors.every((c, i) => i === 0 || c < cursors[i - 1]!);
        if (q.after !== undefined) {
          assert.ok(ascending && cursors.every((c) => c > BigInt(q.after!)));
          assert.equal(BigInt(page.nextCursor ?? -1), cursors.at(-1) ?? BigInt(q.after));
        } else {
          assert.ok(descending && (q.before === undefined || cursors.every((c) => c < BigInt(q.before!))));
          assert.equal(page.nextCursor, page.hasMore ? page.taps.at(-1)!.cursor : null);
        }
      }),
      { numRuns: RUNS },
    );
  });

  test('a valid query with one parameter wrong or unknown is refused as INVALID_INPUT naming that parameter', async () => {
    const limit = field(fc.integer({ min: 1, max: 100 }).map(String), fc.constantFrom('', '0', '101', '-1', '1.5', 'ten', '1e3'), false);
    const fields = (page: 'before' | 'after') => ({
      with: field(fc.oneof(arb.inAnyCase(sam.userId), arb.anyUuid), arb.notUuidText, false),
      limit,
      [page]: field(arb.cursor, arb.notCursorText, false),
    });
    const nearValidQuery = fc
      .constantFrom('before' as const, 'after' as const)
      .chain((page) => nearValid(fields(page), ['before', 'after']));
    await fc.assert(
      fc.asyncProperty(nearValidQuery, async ({ body, mutation }) => {
        // A query string carries text: objects the generator made go as their JSON.
        const text = (v: unknown) => (typeof v === 'object' && v !== null ? JSON.stringify(v) : String(v));
        const query = new URLSearchParams(Object.entries(body).map(([k, v]): [string, string] => [k, text(v)]));
        const problem = assertRefused(await inject('GET', `/v1/taps?${query}`), 400, 'INVALID_INPUT');
        assert.deepEqual(new Set(problem.errors?.map((e) => e.field)), new Set([`querystring.${mutation.field}`]), `?${query}`);
      }),
      { numRuns: RUNS },
    );
  });

  test('schema-valid path parameters that name nothing of mine are 404, never 400', async () => {
    const crockford = fc.string({
      unit: fc.constantFrom(...'0123456789abcdefghjkmnpqrstvwxyzABCDEFGHJKMNPQRSTVWXYZiIlLoO'),
      minLength: 8,
      maxLength: 8,
    });
    const code = fc.tuple(crockford, fc.constantFrom('', '-', ' ')).map(([c, sep]) => `${c.slice(0, 4)}${sep}${c.slice(4)}`);
    const probe = fc.oneof(
      fc.tuple(fc.constantFrom('GET', 'DELETE') as fc.Arbitrary<Method>, code).map(([method, c]) => ({
        method,
        url: `/v1/pairing-codes/${encodeURIComponent(c)}`,
        code: 'PAIRING_CODE_NOT_FOUND' as const,
      })),
      fc
        .tuple(fc.constantFrom('GET /v1/taps/', 'POST /v1/taps/', 'DELETE /v1/pairings/', 'DELETE /v1/devices/'), arb.anyUuid)
        .map(([route, id]) => {
          const [method, path] = route.split(' ') as [Method, string];
          const url = `${path}${encodeURIComponent(id)}${method === 'POST' ? '/ack' : ''}`;
          return { method, url, code: 'NOT_FOUND' as const };
        }),
    );
    await fc.assert(
      fc.asyncProperty(probe, async ({ method, url, code }) => {
        const payload = method === 'POST' ? JSON.stringify({ status: 'seen' }) : undefined;
        assertRefused(await inject(method, url, { payload, contentType: payload && 'application/json' }), 404, code);
      }),
      { numRuns: RUNS },
    );
  });

  test('prototype-pollution payloads are refused, change nothing, and never reach Object.prototype', async () => {
    const prototypeBefore = Object.getOwnPropertyNames(Object.prototype).sort();
    const meBefore = (await inject('GET', '/v1/me')).body;
    const payloads = ['{"__proto__":{"admin":true}}', '{"constructor":{"prototype":{"admin":true}}}'];
    // A lone surrogate: JSON.stringify escapes it, and generated text never contains one.
    const marker = '\udead';
    const inBody = fc.tuple(fc.constantFrom(...bodyRoutes()), fc.constantFrom(...payloads), fc.nat()).chain(([route, payload, at]) =>
      validBody(route.fields).map((body) => {
        const names = Object.keys(body);
        const target = names[at % (names.length + 1)];
        // At the top level, or as the value of a field (bare or inside an array).
        const raw =
          target === undefined
            ? JSON.stringify(body).replace(/^\{/, `{${payload.slice(1, -1)}${names.length ? ',' : ''}`)
            : JSON.stringify({ ...body, [target]: marker }).replace(JSON.stringify(marker), at % 2 ? payload : `[${payload}]`);
        return { route, raw };
      }),
    );
    const inQuery = fc.constantFrom(
      '__proto__[admin]=1',
      'constructor[prototype][admin]=1',
      '__proto__.admin=1',
      '__proto__=%7B%22admin%22%3Atrue%7D',
    );
    await fc.assert(
      fc.asyncProperty(fc.oneof(inBody, inQuery), async (attack) => {
        const response =
          typeof attack === 'string' ? await inject('GET', `/v1/taps?${attack}&limit=1`) : await sendRaw(attack.route, attack.raw);
        assertRefused(response, 400, 'INVALID_INPUT');
        assert.equal(({} as Record<string, unknown>).admin, undefined);
        assert.deepEqual(Object.getOwnPropertyNames(Object.prototype).sort(), prototypeBefore);
      }),
      { numRuns: RUNS },
    );
    assert.equal((await inject('GET', '/v1/me')).body, meBefore);
  });

  test('the pollution keys are ordinary text where text is expected', async () => {
    for (const name of arb.POLLUTION_KEYS) {
      const me = await inject('PATCH', '/v1/me', { payload: JSON.stringify({ displayName: name }), contentType: 'application/json' });
      assert.equal(me.json().user.displayName, name);
      const device = await inject('POST', '/v1/devices', {
        payload: JSON.stringify({ platform: 'web', name }),
        contentType: 'application/json',
      });
      assert.equal(device.statusCode, 201, device.body);
      assertRefused(await inject('GET', `/v1/taps/${name}`), 400, 'INVALID_INPUT');
    }
    assert.equal(({} as Record<string, unknown>).admin, undefined);
  });
});
