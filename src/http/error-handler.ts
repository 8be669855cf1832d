import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ERROR_CATALOG, isAppError, type ErrorCode } from '../errors.ts';
import { PROBLEM_CONTENT_TYPE } from './schemas.ts';

export interface FieldError {
  field: string;
  message: string;
}

interface AjvLikeError {
  instancePath: string;
  keyword: string;
  message?: string;
  params: Record<string, unknown>;
}

/** Turns one schema-validation error into words a client developer can act on. */
export function describeValidationError(part: string, error: AjvLikeError): FieldError {
  const path = error.instancePath.replace(/^\//, '').replaceAll('/', '.');
  const field = path ? `${part}.${path}` : part;
  switch (error.keyword) {
    case 'required':
      return { field: `${field === part ? part : field}.${String(error.params.missingProperty)}`, message: 'is required' };
    case 'additionalProperties':
      return { field: `${field}.${String(error.params.additionalProperty)}`, message: 'is not a known field' };
    case 'enum':
      return { field, message: `must be one of: ${(error.params.allowedValues as unknown[]).join(', ')}` };
    case 'format':
      return { field, message: `must be a valid ${String(error.params.format)}` };
    default:
      return { field, message: error.message ?? 'is invalid' };
  }
}

/** The most telling keywords first: a bad uuid is "not a valid uuid" rather than "does not match ^[0-9a-f…". */
const KEYWORD_RANK = ['required', 'additionalProperties', 'type', 'enum', 'format', 'minLength', 'maxLength', 'pattern'];
const rank = (keyword: string) => {
  const i = KEYWORD_RANK.indexOf(keyword);
  return keyword === 'anyOf' ? Number.MAX_SAFE_INTEGER : i === -1 ? KEYWORD_RANK.length : i;
};

/** ajv may report one field several times (each branch of a union, pattern and format): keep the clearest. */
function onePerField(errors: Array<FieldError & { keyword: string }>): FieldError[] {
  const best = new Map<string, FieldError & { keyword: string }>();
  for (const error of errors) {
    const current = best.get(error.field);
    if (!current || rank(error.keyword) < rank(current.keyword)) best.set(error.field, error);
  }
  return [...best.values()].map(({ field, message }) => ({ field, message }));
}

const FASTIFY_CODES: Record<string, ErrorCode> = {
  FST_ERR_CTP_BODY_TOO_LARGE: 'PAYLOAD_TOO_LARGE',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'UNSUPPORTED_MEDIA_TYPE',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'INVALID_INPUT',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'INVALID_INPUT',
  FST_ERR_CTP_INVALID_JSON_BODY: 'INVALID_INPUT',
};

/** Errors that mean the database cannot be reached, not that the request was wrong. */
const UNAVAILABLE_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'SQLITE_BUSY',
  'SQLITE_WORKER_GONE',
  '57P01',
  '57P03',
  '53300',
]);

export interface Problem {
  code: ErrorCode;
  detail: string;
  errors?: FieldError[];
  headers?: Record<string, string>;
}

export function toProblem(error: unknown): Problem {
  if (isAppError(error)) return { code: error.code, detail: error.message, headers: error.headers };
  const fastifyError = error as Partial<FastifyError> & { validation?: AjvLikeError[]; validationContext?: string };
  if (fastifyError.validation) {
    const part = fastifyError.validationContext ?? 'request';
    const errors = onePerField(fastifyError.validation.map((e) => ({ keyword: e.keyword, ...describeValidationError(part, e) })));
    return { code: 'INVALID_INPUT', detail: errors.map((e) => `${e.field} ${e.message}`).join('; '), errors };
  }
  const mapped = fastifyError.code ? FASTIFY_CODES[fastifyError.code] : undefined;
  if (mapped) {
    const detail =
      fastifyError.code === 'FST_ERR_CTP_INVALID_JSON_BODY' || error instanceof SyntaxError
        ? 'Body is not valid JSON'
        : (fastifyError.message ?? '');
    return { code: mapped, detail };
  }
  if (error instanceof SyntaxError && fastifyError.statusCode === 400) {
    return { code: 'INVALID_INPUT', detail: 'Body is not valid JSON' };
  }
  if (fastifyError.code && UNAVAILABLE_CODES.has(fastifyError.code)) {
    return { code: 'SERVICE_UNAVAILABLE', detail: 'A dependency is unavailable, retry shortly' };
  }
  const status = fastifyError.statusCode;
  if (status === 404) return { code: 'NOT_FOUND', detail: 'Not found' };
  if (status === 429) return { code: 'RATE_LIMITED', detail: 'Too many requests' };
  if (status === 413) return { code: 'PAYLOAD_TOO_LARGE', detail: 'Body too large' };
  if (status !== undefined && status >= 400 && status < 500)
    return { code: 'INVALID_INPUT', detail: fastifyError.message ?? 'Bad request' };
  if (status === 503) return { code: 'SERVICE_UNAVAILABLE', detail: 'Service unavailable' };
  return { code: 'INTERNAL_ERROR', detail: 'Something went wrong on our side; it has been logged' };
}

export function problemBody(code: ErrorCode, detail: string, requestId: string, errors?: FieldError[]) {
  const entry = ERROR_CATALOG[code];
  return {
    type: `urn:navi:error:${code}`,
    title: entry.title,
    status: entry.status,
    detail,
    code,
    requestId,
    ...(errors ? { errors } : {}),
  };
}

export function sendProblem(reply: FastifyReply, request: FastifyRequest, problem: Problem): FastifyReply {
  const status = ERROR_CATALOG[problem.code].status;
  return reply
    .code(status)
    .headers(problem.headers ?? {})
    .type(PROBLEM_CONTENT_TYPE)
    .send(problemBody(problem.code, problem.detail, request.id, problem.errors));
}

/** Recognises a request that lost a race with a concurrent change (see races.ts). */
export type RaceExplainer = (error: unknown, request: FastifyRequest) => Promise<Problem | undefined>;

export function installErrorHandling(
  app: FastifyInstance,
  onServerError: (error: unknown, request: FastifyRequest) => void,
  explainRace: RaceExplainer = async () => undefined,
): void {
  app.setErrorHandler(async (error, request, reply) => {
    const raced = await explainRace(error, request).catch(() => undefined);
    if (raced) {
      request.log.info({ code: raced.code, err: error }, 'request lost a race with a concurrent change');
      return sendProblem(reply, request, raced);
    }
    const problem = toProblem(error);
    const status = ERROR_CATALOG[problem.code].status;
    if (status >= 500) {
      request.log.error({ err: error }, 'request failed');
      onServerError(error, request);
    } else {
      request.log.info({ code: problem.code, detail: problem.detail }, 'request refused');
    }
    return sendProblem(reply, request, problem);
  });
  app.setNotFoundHandler((request, reply) =>
    sendProblem(reply, request, { code: 'NOT_FOUND', detail: `No route ${request.method} ${request.url.split('?')[0]}` }),
  );
}
