import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import type { ModelSort, RankingsService, Window } from './service.js';

const WindowParam = Type.Union([Type.Literal('day'), Type.Literal('week'), Type.Literal('month')], {
  default: 'week',
});

/** Public rankings from the gateway's own usage (aggregates only; no user is identifiable). */
export function rankingsRoutes(app: FastifyInstance, rankings: RankingsService): void {
  app.get(
    '/ranking/models',
    {
      schema: {
        tags: ['catalog'],
        summary: 'Model rankings: requests, tokens, users, median latency, error rate, growth',
        querystring: Type.Object({
          window: Type.Optional(WindowParam),
          sort: Type.Optional(
            Type.Union(
              ['tokens', 'requests', 'users', 'growth', 'latency'].map((s) => Type.Literal(s)),
              { default: 'tokens' },
            ),
          ),
          limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500, default: 50 })),
        }),
      },
      config: { auth: 'public' },
    },
    async (request) => {
      const q = request.query as { window: Window; sort: ModelSort; limit: number };
      return rankings.models(q.window, q.sort, q.limit);
    },
  );

  app.get(
    '/ranking/apps',
    {
      schema: {
        tags: ['catalog'],
        summary: 'App rankings by the X-Title / HTTP-Referer apps that call the gateway',
        querystring: Type.Object({
          window: Type.Optional(WindowParam),
          limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500, default: 50 })),
        }),
      },
      config: { auth: 'public' },
    },
    async (request) => {
      const q = request.query as { window: Window; limit: number };
      return rankings.apps(q.window, q.limit);
    },
  );
}
