import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import type { ValidateFunction } from 'ajv';
import type { App } from '../../src/http/app-type.ts';

const addFormats = addFormatsModule as unknown as (ajv: Ajv2020) => Ajv2020;

export interface Operation {
  method: string;
  /** The OpenAPI path, e.g. /v1/taps/{id}. */
  path: string;
  parameters: Array<{ in: 'path' | 'query'; name: string; required?: boolean; schema: Schema }>;
  body?: Schema;
  responses: Record<string, { content?: Record<string, { schema: Schema }> }>;
}
export type Schema = Record<string, unknown>;

/**
 * The app's own OpenAPI document (what docs/openapi.json is generated from),
 * as operations, with a validator for every documented response body.
 */
export class OpenApi {
  readonly operations: Operation[];
  readonly #ajv: Ajv2020;
  readonly #validators = new Map<string, ValidateFunction>();

  constructor(document: { paths: Record<string, Record<string, Record<string, unknown>>>; components: Record<string, unknown> }) {
    this.#ajv = addFormats(new Ajv2020({ strict: false, allErrors: true }));
    this.#ajv.addSchema({ $id: 'openapi', components: document.components });
    this.operations = Object.entries(document.paths).flatMap(([path, methods]) =>
      Object.entries(methods).map(([method, op]) => ({
        method: method.toUpperCase(),
        path,
        parameters: (op.parameters ?? []) as Operation['parameters'],
        body: (op.requestBody as { content?: Record<string, { schema: Schema }> } | undefined)?.content?.['application/json']?.schema,
        responses: op.responses as Operation['responses'],
      })),
    );
  }

  /** The document of a built app (readied here if it is not yet). */
  static async of(app: App): Promise<OpenApi> {
    await app.ready();
    return new OpenApi(app.swagger() as unknown as ConstructorParameters<typeof OpenApi>[0]);
  }

  operation(method: string, path: string): Operation {
    const found = this.operations.find((op) => op.method === method && op.path === path);
    if (!found) throw new Error(`no operation ${method} ${path}`);
    return found;
  }

  documented(op: Operation): number[] {
    return Object.keys(op.responses).map(Number);
  }

  /** Undefined when the body matches what the document says for this status and content type; otherwise why not. */
  mismatch(op: Operation, status: number, contentType: string | undefined, body: string): string | undefined {
    const response = op.responses[String(status)];
    if (!response) return `status ${status} is not documented`;
    if (!response.content) return body === '' ? undefined : `status ${status} documents no body, got ${body.slice(0, 100)}`;
    const type = (contentType ?? '').split(';')[0]!.trim();
    const media = response.content[type];
    if (!media) return `content type ${type} is not documented for ${status} (${Object.keys(response.content).join(', ')})`;
    const key = `${op.method} ${op.path} ${status} ${type}`;
    let validate = this.#validators.get(key);
    if (!validate) {
      validate = this.#ajv.compile(JSON.parse(JSON.stringify(media.schema).replaceAll('"#/components/', '"openapi#/components/')));
      this.#validators.set(key, validate);
    }
    let value: unknown;
    try {
      value = JSON.parse(body);
    } catch {
      return `body is not JSON: ${body.slice(0, 100)}`;
    }
    return validate(value) ? undefined : `${this.#ajv.errorsText(validate.errors)}: ${body.slice(0, 200)}`;
  }
}
