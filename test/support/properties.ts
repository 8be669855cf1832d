import assert from 'node:assert/strict';
import fc from 'fast-check';
import type { LightMyRequestResponse } from 'fastify';
import { ERROR_CATALOG, type ErrorCode } from '../../src/errors.ts';

/**
 * The shared pieces of the property-based tests (fast-check): what every HTTP
 * answer must look like, generators of valid and invalid values for the
 * fields of the API, of messages with exactly one thing wrong, and of
 * arbitrary bytes on the wire (bodies, path segments, query strings).
 *
 * The generators are written from the documented contract, not from the
 * schemas in src/, so a schema that drifts from it is caught.
 */

// ---- Answers ----------------------------------------------------------------

export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: string;
  requestId: string;
  errors?: Array<{ field: string; message: string }>;
}

/** Not a server error; a refusal is a problem document whose code the catalogue maps to this very status. */
export function assertWellFormed(response: LightMyRequestResponse): Problem | undefined {
  const context = `${response.statusCode} ${response.headers['content-type']} ${response.body.slice(0, 300)}`;
  assert.ok(response.statusCode < 500, `server error: ${context}`);
  const requestId = response.headers['x-request-id'];
  assert.equal(typeof requestId, 'string', `no x-request-id: ${context}`);
  if (response.statusCode >= 200 && response.statusCode < 300) return undefined;
  assert.match(String(response.headers['content-type']), /^application\/problem\+json(;|$)/, context);
  const problem = response.json<Problem>();
  assert.ok(Object.hasOwn(ERROR_CATALOG, problem.code), `uncatalogued code: ${context}`);
  const entry = ERROR_CATALOG[problem.code as ErrorCode];
  assert.equal(entry.status, response.statusCode, context);
  assert.equal(problem.status, response.statusCode, context);
  assert.equal(problem.type, `urn:navi:error:${problem.code}`, context);
  assert.equal(problem.title, entry.title, context);
  assert.ok(typeof problem.detail === 'string' && problem.detail.length > 0, `empty detail: ${context}`);
  assert.equal(problem.requestId, requestId, context);
  return problem;
}

/** A well-formed refusal with exactly this status and code. */
export function assertRefused(response: LightMyRequestResponse, status: number, code: ErrorCode): Problem {
  const problem = assertWellFormed(response);
  assert.ok(problem, `expected ${status} ${code}, got ${response.statusCode} ${response.body.slice(0, 300)}`);
  assert.equal(problem.code, code, response.body);
  assert.equal(response.statusCode, status);
  return problem;
}

// ---- Messages with one thing wrong ------------------------------------------

export type Body = Record<string, unknown>;

/** What a field accepts and what it must refuse. */
export interface FieldSpec {
  required: boolean;
  valid: fc.Arbitrary<unknown>;
  invalid: fc.Arbitrary<unknown>;
}

export const field = (valid: fc.Arbitrary<unknown>, invalid: fc.Arbitrary<unknown>, required = true): FieldSpec => ({
  valid,
  invalid,
  required,
});

/** A field that takes one of these strings. */
export const enumField = (values: readonly string[], required = true): FieldSpec =>
  field(fc.constantFrom(...values), notIn(values), required);

/** Counterexamples print this label instead of the generators inside `value`. */
export const named = <T extends object>(label: string, value: T): T => Object.assign(value, { [fc.toStringMethod]: () => label });

/** An object every field of which is valid (optional ones present or not). */
export function validBody(fields: Record<string, FieldSpec>): fc.Arbitrary<Body> {
  const names = Object.keys(fields);
  const arbitraries = Object.fromEntries(names.map((n) => [n, fields[n]!.valid]));
  return fc.record(arbitraries, { requiredKeys: names.filter((n) => fields[n]!.required) });
}

export type Mutation = { kind: 'missing'; field: string } | { kind: 'invalid' | 'extra'; field: string; value: unknown };

/**
 * A valid body with exactly one thing wrong: a required field missing, a field
 * invalid, or a field too many (never one of `fields`, nor of `alsoKnown`).
 */
export function nearValid(
  fields: Record<string, FieldSpec>,
  alsoKnown: readonly string[] = [],
): fc.Arbitrary<{ body: Body; mutation: Mutation }> {
  const names = Object.keys(fields);
  const required = names.filter((n) => fields[n]!.required);
  const mutations: Array<fc.Arbitrary<Mutation>> = [];
  if (required.length) mutations.push(fc.constantFrom(...required).map((f) => ({ kind: 'missing' as const, field: f })));
  if (names.length)
    mutations.push(
      fc.constantFrom(...names).chain((f) => fields[f]!.invalid.map((value) => ({ kind: 'invalid' as const, field: f, value }))),
    );
  mutations.push(
    fc
      .tuple(
        safeKey.filter((k) => !names.includes(k) && !alsoKnown.includes(k)),
        smallJson,
      )
      .map(([f, value]) => ({ kind: 'extra' as const, field: f, value })),
  );
  return fc.tuple(validBody(fields), fc.oneof(...mutations)).map(([valid, m]) => {
    const body = { ...valid };
    if (m.kind === 'missing') delete body[m.field];
    else body[m.field] = m.value;
    return { body, mutation: m };
  });
}

// ---- Values -----------------------------------------------------------------

export const POLLUTION_KEYS = ['__proto__', 'constructor', 'prototype'];
/** A tap's documented intensities and patterns. */
export const INTENSITIES = ['light', 'medium', 'strong'];
export const PATTERNS = ['single', 'double', 'triple', 'heartbeat', 'long'];
const HEX = '0123456789abcdef';
const ANY_CASE_HEX = '0123456789abcdefABCDEF';

/** What the API documents as an id: a hyphenated UUID, any case, nothing around it. */
const UUID = /^[0-9a-f]{8}-(?:[0-9a-f]{4}-){3}[0-9a-f]{12}$/i;

const hex = (length: number, alphabet = HEX) => fc.string({ unit: fc.constantFrom(...alphabet), minLength: length, maxLength: length });
const uuidOf = (alphabet: string) =>
  fc.tuple(hex(8, alphabet), hex(4, alphabet), hex(4, alphabet), hex(4, alphabet), hex(12, alphabet)).map((p) => p.join('-'));
/** The spelling the server answers with. */
const lowerUuid = uuidOf(HEX);
/** Every spelling of an id the server accepts (and lower-cases). */
export const anyUuid = uuidOf(ANY_CASE_HEX);
/** The same string with each letter in either case; shrinks to the string as given. */
export const inAnyCase = (value: string) =>
  fc
    .array(fc.boolean(), { minLength: value.length, maxLength: value.length })
    .map((upper) => [...value].map((c, i) => (upper[i] ? c.toUpperCase() : c)).join(''));

/** U+0000 to U+001F and U+007F: refused in free text. */
const isControl = (char: string) => {
  const codePoint = char.codePointAt(0)!;
  return codePoint <= 0x1f || codePoint === 0x7f;
};
const anyChar = fc.string({ unit: 'binary', minLength: 1, maxLength: 1 });
/** Any script, with ASCII and the whitespace `trim` removes well represented. */
const plainChar = fc
  .oneof(
    anyChar,
    fc.string({ unit: 'binary-ascii', minLength: 1, maxLength: 1 }),
    fc.constantFrom(' ', '\u00a0', '\u2028', '\u3000', '\ufeff'),
  )
  .filter((c) => !isControl(c));
const controlChar = fc.integer({ min: 0, max: 0x20 }).map((n) => String.fromCharCode(n === 0x20 ? 0x7f : n));

/** [min, max] code points (what the schemas count) of `unit`, biased to both boundaries. */
const textOf = (unit: 'binary' | fc.Arbitrary<string>, min: number, max: number) =>
  fc.oneof(
    fc.string({ unit, minLength: min, maxLength: max }),
    fc.string({ unit, minLength: min, maxLength: min }),
    fc.string({ unit, minLength: max, maxLength: max }),
  );
/** Any code points at all (tokens, codes: fields that take any string). */
export const anyText = (min: number, max: number) => textOf('binary', min, max);
/** Text a person may type: any script, no control characters. */
export const plainText = (min: number, max: number) => textOf(plainChar, min, max);
/** Plain text of [min, max] code points with one control character somewhere in it. */
export const textWithControl = (min: number, max: number) =>
  fc.tuple(plainText(Math.max(0, min - 1), max - 1), fc.nat(), controlChar).map(([text, at, control]) => {
    const chars = [...text];
    chars.splice(at % (chars.length + 1), 0, control);
    return chars.join('');
  });

export const safeKey = fc.string({ maxLength: 8 }).filter((k) => !POLLUTION_KEYS.includes(k));
/** JSON of any shape, up to `maxDepth`, that may carry the pollution keys. */
export const jsonOf = (maxDepth: number) => fc.jsonValue({ maxDepth, stringUnit: 'binary' });
/** Small JSON without the pollution keys (those have properties of their own). */
export const smallJson = jsonOf(1).filter((v) => !/"(__proto__|constructor)"/.test(JSON.stringify(v)));
export const notStringOrNull = fc.oneof(
  fc.integer(),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.boolean(),
  fc.array(smallJson, { maxLength: 3 }),
  fc.dictionary(safeKey, smallJson, { maxKeys: 3 }),
);
export const notString = fc.oneof(notStringOrNull, fc.constant(null));
/** Anything but one of these strings, including near misses (case, a space). */
export const notIn = (values: readonly string[]) =>
  fc.oneof(
    notString,
    fc.string({ unit: 'binary', maxLength: 12 }).filter((s) => !values.includes(s)),
    fc.constantFrom(...values.map((v) => v.toUpperCase()), ...values.map((v) => ` ${v}`)),
  );
/** A value of the wrong type, an empty string or too short, or too long. */
export const outside = (min: number, max: number) => fc.oneof(notString, fc.constant(''.padEnd(min - 1, 'x')), anyText(max + 1, max + 8));

/** Strings that are not an id: near misses of every kind, the `urn:uuid:` prefix included. */
export const notUuidText = fc.oneof(
  fc.string({ maxLength: 40 }).filter((s) => !UUID.test(s)),
  lowerUuid.map((u) => u.slice(1)),
  lowerUuid.map((u) => `${u}0`),
  lowerUuid.map((u) => u.replaceAll('-', '')),
  lowerUuid.map((u) => `{${u}}`),
  lowerUuid.map((u) => `${u}\n`),
  lowerUuid.map((u) => ` ${u}`),
  fc.tuple(fc.constantFrom('urn:uuid:', 'URN:UUID:', 'urn:uuid'), anyUuid).map(([prefix, u]) => prefix + u),
);
export const notUuid = fc.oneof(notString, notUuidText);

/** Cursors are 1 to 15 digits (leading zeros allowed), so each is an exact JavaScript number. */
export const cursor = fc.oneof(
  fc.constantFrom('0', '000000000000000', '999999999999999', String(Number.MAX_SAFE_INTEGER).slice(0, 15)),
  fc.tuple(fc.nat(3), fc.bigInt({ min: 0n, max: 10n ** 15n - 1n })).map(([zeros, n]) => `${'0'.repeat(zeros)}${n}`.slice(-15)),
);
/** Strings that are not a cursor: 16 digits and more (2^53 and beyond), signs, spaces, other notations. */
export const notCursorText = fc.oneof(
  fc.constantFrom('', '-1', '+1', '1.5', '1e3', ' 1', '1 ', '0x1', '１', '1000000000000000', '9007199254740993', '99999999999999999'),
  fc.bigInt({ min: 10n ** 15n, max: 10n ** 20n }).map(String),
  cursor.map((c) => c.padStart(16, '0')),
);
export const notCursor = fc.oneof(notString, notCursorText);

/** An APNs device token: 32 to 100 bytes in hex, either case. */
export const hexToken = fc.integer({ min: 32, max: 100 }).chain((bytes) => hex(bytes * 2, ANY_CASE_HEX));
export const notHexToken = fc.oneof(
  notString,
  fc.constantFrom('', 'f'.repeat(62), 'f'.repeat(63), 'f'.repeat(65), 'f'.repeat(202)),
  hex(64).map((h) => `${h.slice(0, 63)}g`),
);

// ---- Bytes on the wire ------------------------------------------------------

const contentType = fc.oneof(
  fc.constantFrom(
    'application/json',
    'application/json; charset=utf-8',
    'APPLICATION/JSON',
    'application/json; charset=utf-16',
    'application/problem+json',
    'text/plain',
    'application/x-www-form-urlencoded',
    'multipart/form-data; boundary=x',
    'application/octet-stream',
    '',
    ';',
  ),
  fc.string({ maxLength: 40 }),
);

/** A body as bytes on the wire: JSON of any shape, any text, any bytes, oversized, or none. */
export const anyPayload: fc.Arbitrary<{ payload?: string | Buffer; contentType?: string }> = fc.oneof(
  fc.record({ payload: jsonOf(3).map((v) => JSON.stringify(v)), contentType: fc.constant('application/json') }),
  fc.record({ payload: fc.string({ unit: 'binary', maxLength: 200 }), contentType }),
  fc.record({ payload: fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.from(b)), contentType }),
  fc.record({ payload: fc.integer({ min: 4000, max: 9000 }).map((n) => JSON.stringify({ pad: 'x'.repeat(n) })), contentType }),
  fc.record({ contentType }, { requiredKeys: [] }),
);

/** A path segment as sent: tricky words, bad percent-escapes, any text escaped, around the 200-character limit, ids. */
export const segment = fc.oneof(
  fc.constantFrom(
    ...POLLUTION_KEYS,
    ...['current', 'toString', '..', '.', '%00', '%2F', 'null', 'NaN', '-1', '1e999', '%20', '%C3%A9', '%', '%zz', '%E0%A4%A'],
  ),
  fc.string({ unit: 'binary', minLength: 1, maxLength: 40 }).map(encodeURIComponent),
  fc.string({ minLength: 1, maxLength: 60 }).map(encodeURIComponent),
  fc.string({ unit: 'binary', minLength: 190, maxLength: 210 }).map(encodeURIComponent),
  fc.integer({ min: 195, max: 205 }).map((n) => 'x'.repeat(n)),
  fc.oneof(fc.integer(), fc.double()).map(String),
  anyUuid.map(encodeURIComponent),
  notUuidText.filter((s) => s !== '').map(encodeURIComponent),
);

/** Digits around the edges of the cursor space (15 digits) and of exact doubles (2^53). */
const cursorish = fc.oneof(cursor, notCursorText, fc.bigInt({ min: 0n, max: 10n ** 17n }).map(String));
const queryKey = fc.oneof(
  fc.constantFrom(
    ...['with', 'limit', 'before', 'after', 'limit[]', 'after[]', 'with[x]'],
    ...['__proto__', '__proto__[admin]', 'constructor[prototype][admin]'],
  ),
  fc.string({ unit: 'binary', maxLength: 12 }),
);
const queryValue = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 30 }),
  fc.oneof(fc.integer(), fc.double()).map(String),
  fc.bigInt({ min: 0n, max: 10n ** 20n }).map(String),
  anyUuid,
  notUuidText,
  fc.constantFrom('', 'null', 'true', '[]', '{}', 'Infinity', ' 5 ', '1e2', '0x10'),
);

/** A query string for GET /v1/taps: its own parameters with any values, any parameters, or any text. */
export const anyQuery = fc.oneof(
  {
    weight: 3,
    arbitrary: fc
      .record(
        {
          with: fc.oneof(anyUuid, queryValue),
          limit: fc.oneof(fc.integer({ min: 1, max: 100 }).map(String), cursorish, queryValue),
          before: cursorish,
          after: cursorish,
        },
        { requiredKeys: [] },
      )
      .map((q) => new URLSearchParams(q).toString()),
  },
  {
    weight: 2,
    arbitrary: fc
      .array(fc.tuple(queryKey, queryValue), { maxLength: 6 })
      .map((pairs) => pairs.map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join('&')),
  },
  { weight: 1, arbitrary: fc.string({ maxLength: 60 }).map((s) => s.replaceAll('#', '%23')) },
);
