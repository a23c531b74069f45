import Ajv, { type ValidateFunction } from 'ajv';
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
  app.setValidatorCompiler(({ schema, httpPart }) => {
    const ajv = httpPart === 'body' ? strict : coercing;
    return compiledOnFirstUse(() => ajv.compile(schema as object));
  });
}

/**
 * A route's validator, compiled on the route's first request rather than at start. Compiled
 * validators of the ~100 routes (and Ajv's code generation for them) would otherwise hold ~2 MiB of
 * memory, mostly for routes a given gateway never serves. The first request of a route pays the
 * compilation once: from under a millisecond to ~30 ms for the largest bodies (chat completions,
 * messages). Fastify reads the errors of a failed validation from the function's `errors`.
 */
function compiledOnFirstUse(compile: () => ValidateFunction) {
  let validate: ValidateFunction | undefined;
  const check = Object.assign(
    (data: unknown) => {
      validate ??= compile();
      const valid = validate(data);
      check.errors = validate.errors;
      return valid;
    },
    { errors: null as ValidateFunction['errors'] },
  );
  return check;
}
