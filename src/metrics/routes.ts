import { timingSafeEqual } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { presentedSecret } from '../http/auth.js';
import { GatewayError } from '../lib/errors.js';
import type { Metrics } from './metrics.js';

function sameToken(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/**
 * Records every HTTP response (route template, method, status, time to the last byte — streams
 * included, which bypass Fastify's onResponse) and serves `GET /metrics` in Prometheus' format,
 * behind `Authorization: Bearer $METRICS_TOKEN` when that is set.
 */
export function installMetrics(app: FastifyInstance, metrics: Metrics, token: string | null): void {
  app.addHook('onRequest', (request, reply, done) => {
    const started = performance.now();
    metrics.inFlight.inc();
    reply.raw.once('close', () => {
      metrics.inFlight.dec();
      metrics.httpDone(
        request.routeOptions.url ?? 'unmatched',
        request.method,
        reply.raw.statusCode,
        (performance.now() - started) / 1000,
      );
    });
    done();
  });

  app.get(
    '/metrics',
    {
      schema: { tags: ['health'], summary: 'Prometheus metrics (Bearer METRICS_TOKEN when set)' },
      // Not an API key route: the metrics token is checked here.
      config: { auth: 'public' },
    },
    async (request, reply) => {
      if (token) {
        const given = presentedSecret(request);
        if (!given || !sameToken(given, token)) {
          throw new GatewayError(401, 'GET /metrics needs Authorization: Bearer <METRICS_TOKEN>', {
            type: 'authentication_error',
            code: 'invalid_metrics_token',
          });
        }
      }
      const text = await metrics.registry.metrics();
      reply.header('content-type', metrics.registry.contentType);
      return text;
    },
  );
}
