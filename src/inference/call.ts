import type { FastifyRequest } from 'fastify';
import type { Principal } from '../accounts/principal.js';
import { sessionRefused } from '../http/auth.js';
import type { InferenceCall } from './pipeline.js';

/** The calling app, as OpenRouter identifies apps (`X-Title`, else `HTTP-Referer`). */
export function appOf(headers: Record<string, string | string[] | undefined>): string | null {
  const t = headers['x-title'] ?? headers['http-referer'] ?? headers.referer;
  return typeof t === 'string' && t ? t.slice(0, 200) : null;
}

const CLIENT_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/**
 * The caller's own id for a request (`X-Client-Request-Id`, as OpenAI takes it, or `X-Request-Id`),
 * as the `x-client-request-id` header that echoes it: a correlation id. The gateway's `x-request-id`
 * is always its own, unique id (usage records and holds are keyed by it, so a reused caller id never
 * skips a charge).
 */
function clientRequestIdHeader(
  headers: Record<string, string | string[] | undefined>,
): Record<string, string> {
  const v = headers['x-client-request-id'] ?? headers['x-request-id'];
  return typeof v === 'string' && CLIENT_ID.test(v) ? { 'x-client-request-id': v } : {};
}

type FromRequest =
  | 'requestId'
  | 'principal'
  | 'app'
  | 'clientIp'
  | 'headers'
  | 'startedAt'
  | 'responseHeaders';

/** An inference call: what the endpoint knows about the request, plus what every endpoint takes from HTTP. */
export function inferenceCall(
  request: FastifyRequest,
  principal: Principal,
  spec: Omit<InferenceCall, FromRequest>,
): InferenceCall {
  // The routes refuse sessions in the auth hook (config.inference); this holds for any route that bills.
  if (principal.kind === 'session') throw sessionRefused();
  // Every field named (no spread): one object shape for every endpoint's call, built in one step.
  // The type lists every key, optional ones too, so a field added to InferenceCall cannot be dropped.
  const call: { [K in keyof Required<InferenceCall>]: InferenceCall[K] } = {
    endpoint: spec.endpoint,
    model: spec.model,
    providerPref: spec.providerPref,
    fallbackModels: spec.fallbackModels,
    stream: spec.stream,
    promptTokensBound: spec.promptTokensBound,
    maxOutputTokens: spec.maxOutputTokens,
    choices: spec.choices,
    units: spec.units,
    priceOf: spec.priceOf,
    requestId: request.id,
    principal,
    app: appOf(request.headers),
    clientIp: request.ip,
    headers: request.headers,
    startedAt: request.startedAt,
    responseHeaders: clientRequestIdHeader(request.headers),
  };
  return call;
}
