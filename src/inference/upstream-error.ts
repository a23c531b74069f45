import { GatewayError } from '../lib/errors.js';
import { errors as undiciErrors } from '../providers/undici.js';

/** Turn an upstream error response into our error, in OpenAI's shape, without leaking provider credentials. */
export function fromUpstreamResponse(
  status: number,
  text: string,
  provider: string,
  retryAfter?: string,
): GatewayError {
  let message = '';
  let code: string | null = null;
  let param: string | null = null;
  try {
    const body = JSON.parse(text);
    const e = body?.error ?? body;
    if (typeof e?.message === 'string') message = e.message;
    if (typeof e?.code === 'string') code = e.code;
    if (typeof e?.param === 'string') param = e.param;
    if (body?.type === 'error' && typeof body?.error?.type === 'string') code = body.error.type;
  } catch {
    message = text.slice(0, 300);
  }
  if (!message) message = `HTTP ${status}`;
  const headers: Record<string, string> | undefined = retryAfter ? { 'retry-after': retryAfter } : undefined;
  if (status === 401 || status === 403 || status === 402) {
    return new GatewayError(
      502,
      `Provider ${provider} refused the gateway's credentials or account (HTTP ${status})`,
      {
        type: 'upstream_error',
        code: 'upstream_auth_error',
      },
    );
  }
  if (status === 429) {
    return new GatewayError(429, `Provider ${provider} is rate limiting: ${message}`, {
      type: 'rate_limit_error',
      code: 'upstream_rate_limited',
      headers,
    });
  }
  if (status === 408 || status === 504) {
    return new GatewayError(504, `Provider ${provider} timed out: ${message}`, {
      type: 'timeout_error',
      code: 'upstream_timeout',
    });
  }
  if (status >= 500) {
    return new GatewayError(502, `Provider ${provider} failed (HTTP ${status}): ${message}`, {
      type: 'upstream_error',
      code: 'upstream_error',
    });
  }
  return new GatewayError(status, message, {
    type: status === 404 ? 'not_found_error' : 'invalid_request_error',
    code,
    param,
  });
}

export function fromNetworkError(err: unknown, provider: string): GatewayError {
  const e = err as Error & { code?: string };
  if (
    e instanceof undiciErrors.HeadersTimeoutError ||
    e instanceof undiciErrors.BodyTimeoutError ||
    e instanceof undiciErrors.ConnectTimeoutError ||
    e?.name === 'TimeoutError'
  ) {
    return new GatewayError(504, `Provider ${provider} did not answer in time`, {
      type: 'timeout_error',
      code: 'upstream_timeout',
    });
  }
  return new GatewayError(
    502,
    `Provider ${provider} is unreachable (${e?.code ?? e?.name ?? 'network error'})`,
    {
      type: 'upstream_error',
      code: 'upstream_unreachable',
    },
  );
}

/** Read at most `limit` bytes of a body (an error body is small; a huge one is cut). */
export async function readLimited(
  body: AsyncIterable<Uint8Array> & { destroy?: () => void },
  limit: number,
): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of body) {
    size += c.length;
    if (size > limit) {
      body.destroy?.();
      break;
    }
    chunks.push(Buffer.from(c));
  }
  return Buffer.concat(chunks).toString('utf8');
}
