import { Type, type TSchema } from 'typebox';
import { ERROR_CATALOG, type ErrorCode } from '../errors.ts';

/** Building blocks shared by the route schemas of every feature. */

/** A string enum that says `type: string` too, so API client generators make it a string enum. */
export const StringEnum = <const T extends readonly string[]>(values: T, options: { description?: string } = {}) =>
  Type.Unsafe<T[number]>({ type: 'string', enum: [...values], ...options });
/**
 * A UUID in its canonical form. Any case is accepted (Swift's uuidString is
 * upper case) and stored lower case, so the same id is always the same id.
 */
export const Uuid = (description?: string) =>
  Type.String({ format: 'uuid', pattern: UUID_PATTERN, [LOWERCASE_KEYWORD]: true, description });
export const UUID_PATTERN = '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$';
/** Schema keyword (an OpenAPI extension) that makes validation lower-case the value; see validation.ts. */
export const LOWERCASE_KEYWORD = 'x-lowercase';

/** Free text a person typed: no control characters (PostgreSQL cannot store U+0000, and they only cause trouble). */
export const PLAIN_TEXT_PATTERN = '^[^\\u0000-\\u001f\\u007f]*$';
export const Timestamp = (description?: string) => Type.String({ format: 'date-time', description });
export const NullableTimestamp = (description?: string) => Type.Union([Type.String({ format: 'date-time' }), Type.Null()], { description });
/** At most 15 digits: every cursor stays an exact JavaScript number. */
export const Cursor = (
  description = 'A position in your delivery log, as decimal digits: your entries are numbered 1, 2, 3 ... with no holes (docs/delivery.md)',
) => Type.String({ pattern: '^[0-9]{1,15}$', description });

export const ProblemSchema = Type.Object(
  {
    type: Type.String({ description: 'urn:navi:error:<code>' }),
    title: Type.String(),
    status: Type.Integer(),
    detail: Type.String(),
    code: StringEnum(Object.keys(ERROR_CATALOG) as ErrorCode[], { description: 'Stable machine-readable error code, see docs/errors.md' }),
    requestId: Type.String(),
    errors: Type.Optional(
      Type.Array(Type.Object({ field: Type.String(), message: Type.String() }), {
        description: 'For INVALID_INPUT: every offending field',
      }),
    ),
  },
  { $id: 'Problem', description: 'RFC 9457 problem document' },
);

export const PROBLEM_CONTENT_TYPE = 'application/problem+json';

const STATUS_TEXT: Record<number, string> = {
  400: 'Invalid input',
  401: 'Missing, invalid or expired credentials',
  403: 'Not allowed',
  404: 'Not found',
  409: 'Conflict with the current state',
  410: 'Gone',
  413: 'Body too large',
  415: 'Body is not JSON',
  422: 'Well-formed but refused',
  429: 'Rate limited (see Retry-After)',
  500: 'Unexpected failure',
  503: 'Temporarily unavailable',
};

/**
 * Error responses of a route for the schema's `response` map: each status is
 * documented with the problem schema and the error codes it can carry.
 */
export function problems(...statuses: number[]): Record<number, TSchema> {
  const all = [...new Set([...statuses, 500, 503])].sort();
  const out: Record<number, TSchema> = {};
  for (const status of all) {
    const codes = (Object.keys(ERROR_CATALOG) as ErrorCode[]).filter((code) => ERROR_CATALOG[code].status === status);
    out[status] = {
      description: `${STATUS_TEXT[status] ?? 'Error'}${codes.length ? ` (${codes.join(', ')})` : ''}`,
      content: { [PROBLEM_CONTENT_TYPE]: { schema: Type.Ref('Problem') } },
    } as unknown as TSchema;
  }
  return out;
}

export const NoContent = Type.Null({ description: 'No content' });
