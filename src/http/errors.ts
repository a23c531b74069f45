import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { GatewayError } from '../lib/errors.js';

/** Our error, rendered in the endpoint family's own shape (OpenAI by default, Anthropic on /v1/messages). */
export function sendError(request: FastifyRequest, reply: FastifyReply, err: GatewayError): FastifyReply {
  if (err.headers) reply.headers(err.headers);
  reply.header('x-request-id', request.id);
  if (request.routeOptions.config?.errorFormat === 'anthropic') {
    return reply
      .code(err.status)
      .send({ type: 'error', error: { type: anthropicType(err.status), message: err.message } });
  }
  return reply.code(err.status).send(err.toJSON());
}

function anthropicType(status: number): string {
  switch (status) {
    case 400:
    case 413:
    case 422:
      return 'invalid_request_error';
    case 401:
      return 'authentication_error';
    case 402:
      return 'billing_error';
    case 403:
      return 'permission_error';
    case 404:
      return 'not_found_error';
    case 429:
      return 'rate_limit_error';
    case 504:
      return 'timeout_error';
    case 529:
      return 'overloaded_error';
    default:
      return 'api_error';
  }
}

/** Map framework errors (validation, body parsing, size) onto GatewayError. */
export function toGatewayError(err: FastifyError | Error): GatewayError {
  if (err instanceof GatewayError) return err;
  const e = err as FastifyError & {
    validation?: Array<{ instancePath: string; message?: string; params?: any; keyword: string }>;
  };
  if (e.validation?.length) {
    const v = e.validation[0]!;
    let path = v.instancePath.replace(/^\//, '').replace(/\//g, '.');
    if (v.keyword === 'required' && v.params?.missingProperty) {
      path = path ? `${path}.${v.params.missingProperty}` : v.params.missingProperty;
      return new GatewayError(400, `Missing required parameter: '${path}'`, {
        param: path,
        code: 'missing_required_parameter',
      });
    }
    if (v.keyword === 'additionalProperties' && v.params?.additionalProperty) {
      const p = path ? `${path}.${v.params.additionalProperty}` : v.params.additionalProperty;
      return new GatewayError(400, `Unrecognized parameter: '${p}'`, { param: p, code: 'unknown_parameter' });
    }
    const where = path || (e.validationContext ?? 'body');
    return new GatewayError(400, `Invalid '${where}': ${v.message ?? 'invalid value'}`, {
      param: path || null,
      code: 'invalid_value',
    });
  }
  switch (e.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new GatewayError(413, 'Request body is too large', { code: 'request_too_large' });
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new GatewayError(400, 'Request body is empty; expected JSON', { code: 'invalid_json' });
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new GatewayError(415, 'Unsupported content type; send application/json', {
        type: 'invalid_request_error',
        code: 'unsupported_media_type',
      });
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return new GatewayError(400, 'Request body is not valid JSON', { code: 'invalid_json' });
  }
  if (err instanceof SyntaxError || e.statusCode === 400) {
    return new GatewayError(400, 'Request body is not valid JSON', { code: 'invalid_json' });
  }
  if (e.statusCode && e.statusCode >= 400 && e.statusCode < 500) {
    return new GatewayError(e.statusCode, e.message);
  }
  return new GatewayError(500, 'Internal server error', { type: 'server_error', code: 'internal_error' });
}

export function installErrorHandling(app: FastifyInstance): void {
  app.setErrorHandler((err, request, reply) => {
    const ge = toGatewayError(err as FastifyError);
    if (ge.status >= 500 && !(err instanceof GatewayError)) request.log.error({ err }, 'unhandled error');
    return sendError(request, reply, ge);
  });
  app.setNotFoundHandler((request, reply) =>
    sendError(
      request,
      reply,
      new GatewayError(404, `Unknown route: ${request.method} ${request.url.split('?')[0]}`, {
        code: 'unknown_route',
      }),
    ),
  );
}
