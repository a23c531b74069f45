/**
 * Pino options of the gateway's logger: secrets never reach the logs.
 *
 * Paths of known places go to pino's `redact`. Secrets one level down in whatever object is logged
 * (`{ body: { api_key } }`) are censored by the `log` formatter instead of a wildcard-first redact
 * path (`*.api_key`): pino runs a wildcard-first path over every child logger's bindings too, and
 * Fastify makes a child logger for every request, so that path cost every request a pass over all
 * redact paths.
 */
const REDACT = [
  'req.headers.authorization',
  'req.headers["x-api-key"]',
  'req.headers.cookie',
  'headers.authorization',
  'headers["x-api-key"]',
  'api_key',
  'apiKey',
];

export const CENSOR = '[redacted]';
const NESTED_SECRETS = ['api_key', 'apiKey'];

/** A copy of a log line's object with `api_key` / `apiKey` of its object properties censored. */
export function censorNested(obj: Record<string, unknown>): Record<string, unknown> {
  let out: Record<string, unknown> | null = null;
  for (const k in obj) {
    const v = obj[k];
    if (v === null || typeof v !== 'object' || Array.isArray(v)) continue;
    let copy: Record<string, unknown> | null = null;
    for (const s of NESTED_SECRETS) {
      if (Object.hasOwn(v, s)) {
        copy ??= { ...(v as Record<string, unknown>) };
        copy[s] = CENSOR;
      }
    }
    if (copy) {
      out ??= { ...obj };
      out[k] = copy;
    }
  }
  return out ?? obj;
}

export function loggerOptions(level: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    level,
    redact: { paths: REDACT, censor: CENSOR },
    formatters: { log: censorNested },
    ...extra,
  };
}
