import { badRequest } from '../lib/errors.js';

type Headers = Record<string, string | string[] | undefined>;

const one = (v: string | string[] | undefined) => (Array.isArray(v) ? v[0] : v);

export const TIMEOUT_HEADER = 'x-gatewayz-timeout-ms';

/**
 * The request's total time budget: `x-gatewayz-timeout-ms` lowers the gateway's UPSTREAM_TIMEOUT_MS
 * for one request (it can never raise it).
 */
export function requestTimeoutMs(headers: Headers, configuredMs: number): number {
  const raw = one(headers[TIMEOUT_HEADER]);
  if (raw === undefined || raw === '') return configuredMs;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1)
    throw badRequest(
      `${TIMEOUT_HEADER} must be a positive integer (milliseconds), got "${raw}"`,
      TIMEOUT_HEADER,
    );
  return Math.min(n, configuredMs);
}

const truthy = (v: string | undefined) =>
  v !== undefined && ['1', 'true', 'yes', 'on'].includes(v.toLowerCase());

/** Sticky routing: `x-gatewayz-sticky: true` keeps this user on one provider per model (prompt caching). */
export function stickyKeyOf(call: { principal: { userId: string | null }; headers: Headers }): {
  key: string | null;
  asked: boolean;
} {
  return { key: call.principal.userId, asked: truthy(one(call.headers['x-gatewayz-sticky'])) };
}

/** `x-gatewayz-cache: true` asks for the response cache on this request. */
export function cacheAsked(headers: Headers): boolean {
  return truthy(one(headers['x-gatewayz-cache']));
}
