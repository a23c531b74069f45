import Ajv from 'ajv';
import addFormats from 'ajv-formats';
import type { FastifyInstance } from 'fastify';

/**
 * Bodies are validated strictly (no type coercion: `"model": 1` is an error, not "1"); query strings
 * and params are coerced, since they arrive as text.
 */
export function installValidation(app: FastifyInstance): void {
  const make = (coerce: boolean) => {
    const ajv = new (Ajv as unknown as typeof Ajv.default)({
      coerceTypes: coerce ? 'array' : false,
      useDefaults: true,
      removeAdditional: false,
      allErrors: false,
      strict: false,
    });
    (addFormats as unknown as typeof addFormats.default)(ajv);
    return ajv;
  };
  const strict = make(false);
  const coercing = make(true);
  app.setValidatorCompiler(
    ({ schema, httpPart }) => (httpPart === 'body' ? strict : coercing).compile(schema as object) as any,
  );
}
