/** One error type for the whole gateway; serialized in OpenAI's shape at the edge. */
export type ErrorType =
  | 'invalid_request_error'
  | 'authentication_error'
  | 'permission_error'
  | 'insufficient_credits'
  | 'not_found_error'
  | 'conflict_error'
  | 'rate_limit_error'
  | 'upstream_error'
  | 'timeout_error'
  | 'server_error'
  | (string & {});

export class GatewayError extends Error {
  readonly status: number;
  readonly type: ErrorType;
  readonly code: string | null;
  readonly param: string | null;
  readonly headers: Record<string, string> | undefined;

  constructor(
    status: number,
    message: string,
    opts: {
      type?: ErrorType;
      code?: string | null;
      param?: string | null;
      headers?: Record<string, string>;
    } = {},
  ) {
    super(message);
    this.status = status;
    this.type = opts.type ?? defaultType(status);
    this.code = opts.code ?? null;
    this.param = opts.param ?? null;
    this.headers = opts.headers;
  }

  toJSON(): ErrorBody {
    return { error: { message: this.message, type: this.type, code: this.code, param: this.param } };
  }
}

export interface ErrorBody {
  error: { message: string; type: string; code: string | null; param: string | null };
}

function defaultType(status: number): ErrorType {
  switch (status) {
    case 400:
    case 413:
    case 422:
      return 'invalid_request_error';
    case 401:
      return 'authentication_error';
    case 402:
      return 'insufficient_credits';
    case 403:
      return 'permission_error';
    case 404:
      return 'not_found_error';
    case 409:
      return 'conflict_error';
    case 429:
      return 'rate_limit_error';
    case 504:
      return 'timeout_error';
    default:
      return status >= 500 ? 'server_error' : 'invalid_request_error';
  }
}

export const badRequest = (message: string, param: string | null = null, code: string | null = null) =>
  new GatewayError(400, message, { param, code });
export const notFound = (message: string, code: string | null = null, param: string | null = null) =>
  new GatewayError(404, message, { code, param });
export const unauthorized = (message = 'Invalid or missing API key', code = 'invalid_api_key') =>
  new GatewayError(401, message, { code });
export const forbidden = (message: string, code: string | null = 'forbidden') =>
  new GatewayError(403, message, { code });
