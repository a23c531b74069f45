// Error bodies in each provider's own shape.
import { type Ctx, sendJson } from './http.js';
import type { MockKind } from './types.js';

export interface ErrorDetail {
  /** OpenAI `type` / Anthropic `error.type`; derived from the status when omitted. */
  type?: string;
  code?: string | null;
  param?: string | null;
  /** OpenRouter `error.metadata`. */
  metadata?: Record<string, unknown>;
}

const DEFAULT_MESSAGES: Record<number, string> = {
  400: 'Bad request',
  401: 'Incorrect API key provided.',
  402: 'Insufficient credits. Add more using https://openrouter.ai/credits',
  403: 'You are not allowed to access this resource.',
  404: 'Not found',
  408: 'Request timed out',
  413: 'Request too large',
  429: 'Rate limit reached for requests. Please try again later.',
  500: 'The server had an error while processing your request. Sorry about that!',
  502: 'Bad gateway: upstream provider returned an error',
  503: 'The server is overloaded or not ready yet.',
  504: 'Gateway timeout',
  529: 'Overloaded',
};

export function defaultMessage(status: number): string {
  return DEFAULT_MESSAGES[status] ?? (status >= 500 ? 'Internal server error' : `Error ${status}`);
}

function openaiType(status: number): string {
  if (status === 429) return 'requests';
  if (status === 403) return 'permission_error';
  if (status >= 500) return 'server_error';
  return 'invalid_request_error';
}

function openaiCode(status: number): string | null {
  if (status === 401) return 'invalid_api_key';
  if (status === 429) return 'rate_limit_exceeded';
  return null;
}

function anthropicType(status: number): string {
  const map: Record<number, string> = {
    400: 'invalid_request_error',
    401: 'authentication_error',
    402: 'billing_error',
    403: 'permission_error',
    404: 'not_found_error',
    413: 'request_too_large',
    429: 'rate_limit_error',
    504: 'timeout_error',
    529: 'overloaded_error',
  };
  return map[status] ?? (status >= 500 ? 'api_error' : 'invalid_request_error');
}

export function errorBody(
  kind: MockKind,
  status: number,
  message: string,
  detail: ErrorDetail = {},
  requestId?: string,
): Record<string, unknown> {
  switch (kind) {
    case 'anthropic':
      return {
        type: 'error',
        error: { type: detail.type ?? anthropicType(status), message },
        ...(requestId ? { request_id: requestId } : {}),
      };
    case 'openrouter': {
      const metadata =
        detail.metadata ??
        (status === 502 ? { provider_name: 'OpenAI', raw: 'upstream error (mock)' } : undefined);
      return { error: { code: status, message, ...(metadata ? { metadata } : {}) } };
    }
    default: {
      const error = {
        message,
        type: detail.type ?? openaiType(status),
        param: detail.param ?? null,
        code: detail.code === undefined ? openaiCode(status) : detail.code,
      };
      return kind === 'portkey' ? { error, provider: 'openai' } : { error };
    }
  }
}

export function sendError(
  ctx: Ctx,
  status: number,
  message: string,
  detail?: ErrorDetail,
  headers: Record<string, string> = {},
): void {
  const body = errorBody(ctx.kind, status, message, detail, ctx.requestId);
  // Errors are never subject to body-level faults.
  sendJson({ ...ctx, fault: null }, status, body, headers);
}
