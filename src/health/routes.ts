import type { FastifyInstance } from 'fastify';
import { sql } from 'kysely';
import type { Catalog } from '../catalog/service.js';
import type { Db } from '../db/database.js';
import type { CircuitBreakers } from '../routing/breaker.js';

export const VERSION = '0.1.0';

export function healthRoutes(
  app: FastifyInstance,
  deps: {
    db: Db;
    catalog: Catalog;
    startedAt: number;
    /** Rate limiter state (src/limits): backend, up/down, failure mode. */
    limits?: { health(): { status: string } & Record<string, unknown> };
    /** Circuit breakers (src/routing): each provider's circuit state. */
    breakers?: CircuitBreakers;
  },
): void {
  app.get('/', { schema: { hide: true }, config: { auth: 'public' } }, async () => ({
    name: 'Gatewayz',
    version: VERSION,
    description: 'OpenAI-compatible AI gateway with keys, exact credit billing, limits and routing',
    links: {
      docs: '/docs',
      openapi: '/openapi.json',
      health: '/health',
      models: '/models',
      chat: '/v1/chat/completions',
    },
  }));

  app.get(
    '/ping',
    { schema: { tags: ['health'], summary: 'Liveness with uptime' }, config: { auth: 'public' } },
    async () => ({
      status: 'pong',
      uptime_s: Math.round((Date.now() - deps.startedAt) / 1000),
      version: VERSION,
      timestamp: new Date().toISOString(),
    }),
  );

  app.get(
    '/health',
    { schema: { tags: ['health'], summary: 'Database and provider status' }, config: { auth: 'public' } },
    async (_req, reply) => {
      let database = 'ok';
      try {
        await sql`select 1`.execute(deps.db.db);
      } catch {
        database = 'error';
      }
      const sync = new Map(deps.catalog.syncStatus().map((s) => [s.provider, s]));
      const names = [...deps.catalog.providers.keys()];
      const circuits = new Map(
        (await deps.breakers?.view(names).catch(() => []))?.map((b) => [b.key, b.state]) ?? [],
      );
      const providers = names.map((name) => ({
        name,
        status: sync.get(name)?.status ?? 'pending',
        last_sync_at: sync.get(name)?.last_sync_at ?? null,
        circuit: circuits.get(name) ?? 'closed',
      }));
      const healthy = database === 'ok';
      const rateLimits = deps.limits?.health();
      reply.code(healthy ? 200 : 503);
      return {
        status: healthy
          ? providers.every((p) => p.status === 'ok' && p.circuit === 'closed') &&
            rateLimits?.status !== 'down'
            ? 'healthy'
            : 'degraded'
          : 'unhealthy',
        version: VERSION,
        database: { status: database, dialect: deps.db.dialect },
        ...(rateLimits ? { rate_limits: rateLimits } : {}),
        providers,
        models: deps.catalog.entries().length,
      };
    },
  );
}
