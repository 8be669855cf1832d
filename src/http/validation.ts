import { Ajv, type Options } from 'ajv';
import addFormatsModule from 'ajv-formats';
import { LOWERCASE_KEYWORD } from './schemas.ts';

const addFormats = addFormatsModule as unknown as (ajv: Ajv) => Ajv;

/**
 * Bodies and WebSocket messages are validated strictly: a string is never
 * turned into a number, unknown fields are refused. Query strings and path
 * parameters arrive as text, so they are coerced.
 */
export function createAjv(kind: 'strict' | 'coercing'): Ajv {
  const options: Options = {
    coerceTypes: kind === 'coercing' ? 'array' : false,
    useDefaults: true,
    removeAdditional: false,
    // Report every offending field at once; bodies are capped at 4 KiB, so this stays cheap.
    allErrors: true,
    strict: false,
  };
  const ajv = new Ajv(options);
  addFormats(ajv);
  ajv.addKeyword({
    keyword: LOWERCASE_KEYWORD,
    type: 'string',
    modifying: true,
    schemaType: 'boolean',
    compile: (enabled: boolean) => (value: string, ctx) => {
      if (enabled && ctx && ctx.parentData !== undefined) {
        (ctx.parentData as Record<string | number, unknown>)[ctx.parentDataProperty] = value.toLowerCase();
      }
      return true;
    },
  });
  return ajv;
}
