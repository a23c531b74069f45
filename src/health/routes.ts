import type { FastifyInstance } from 'fastify';
import { sql } from 'kysely';
import type { Catalog } from '../catalog/service.js';
import type { Db } from '../db/database.js';

export const VERSION = '0.1.0';

export function healthRoutes(
  app: FastifyInstance,
  deps: { db: Db; catalog: Catalog; startedAt: number },
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
      const providers = [...deps.catalog.providers.keys()].map((name) => ({
        name,
        status: sync.get(name)?.status ?? 'pending',
        last_sync_at: sync.get(name)?.last_sync_at ?? null,
      }));
      const healthy = database === 'ok';
      reply.code(healthy ? 200 : 503);
      return {
        status: healthy ? (providers.every((p) => p.status === 'ok') ? 'healthy' : 'degraded') : 'unhealthy',
        version: VERSION,
        database: { status: database, dialect: deps.db.dialect },
        providers,
        models: deps.catalog.entries().length,
      };
    },
  );
}
