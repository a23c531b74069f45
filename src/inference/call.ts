import type { FastifyRequest } from 'fastify';
import type { Principal } from '../accounts/principal.js';
import { sessionRefused } from '../http/auth.js';
import type { InferenceCall } from './pipeline.js';

/** The calling app, as OpenRouter identifies apps (`X-Title`, else `HTTP-Referer`). */
export function appOf(headers: Record<string, string | string[] | undefined>): string | null {
  const t = headers['x-title'] ?? headers['http-referer'] ?? headers.referer;
  return typeof t === 'string' && t ? t.slice(0, 200) : null;
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
  return {
    ...spec,
    requestId: request.id,
    principal,
    app: appOf(request.headers),
    clientIp: request.ip,
    headers: request.headers,
    startedAt: request.startedAt,
    responseHeaders: {},
  };
}
