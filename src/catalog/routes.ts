import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { scaledToDecimal } from '../lib/decimal.js';
import { notFound } from '../lib/errors.js';
import { PROVIDERS } from '../providers/definitions.js';
import type { BreakerView, CircuitBreakers } from '../routing/breaker.js';
import type { Catalog, CatalogEntry } from './service.js';

const perToken = (n: number | null) => (n === null ? null : scaledToDecimal(n, 12));
const perUnit = (n: number | null) => (n === null ? null : scaledToDecimal(n, 6));

/** One model as GET /models shows it: OpenRouter-style per-token price strings, plus every provider serving it. */
function modelView(entries: CatalogEntry[]) {
  const e = entries[0]!;
  const p = e.price;
  return {
    id: e.id,
    name: e.name,
    description: e.description,
    context_length: e.contextLength,
    max_output_tokens: e.maxOutputTokens,
    modality: e.modality,
    provider: e.provider,
    providers: entries.map((x) => x.provider),
    pricing: p
      ? {
          prompt: perToken(p.prompt),
          completion: perToken(p.completion),
          input_cache_read: perToken(p.cacheRead),
          input_cache_write: perToken(p.cacheWrite),
          internal_reasoning: perToken(p.reasoning),
          request: perUnit(p.request),
          image: perUnit(p.image),
        }
      : null,
    pricing_per_million_usd: p ? { prompt: p.prompt / 1e6, completion: p.completion / 1e6 } : null,
  };
}

export function catalogRoutes(
  app: FastifyInstance,
  catalog: Catalog,
  providerOrder: string[],
  breakers?: CircuitBreakers,
  /** Re-read every provider's catalog now (and tell the other instances to reload it). */
  syncNow?: () => Promise<void>,
): void {
  if (syncNow) {
    app.post(
      '/admin/catalog/sync',
      {
        schema: {
          tags: ['admin'],
          summary: 'Re-read every enabled provider’s catalog now; returns the providers’ status',
        },
        config: { auth: 'admin', permission: 'catalog:sync' },
      },
      async () => {
        await syncNow();
        return { success: true, providers: catalog.syncStatus() };
      },
    );
  }
  const grouped = (provider?: string) => {
    const byId = new Map<string, CatalogEntry[]>();
    for (const e of catalog.entries()) {
      if (provider && e.provider !== provider) continue;
      const l = byId.get(e.id);
      if (l) l.push(e);
      else byId.set(e.id, [e]);
    }
    const rank = (p: string) => {
      const i = providerOrder.indexOf(p);
      return i < 0 ? 999 : i;
    };
    for (const l of byId.values()) l.sort((a, b) => rank(a.provider) - rank(b.provider));
    return [...byId.values()];
  };

  app.get(
    '/models',
    {
      schema: {
        tags: ['catalog'],
        summary: 'Model catalog with prices (filter by provider, search, paginate)',
        querystring: Type.Object({
          provider: Type.Optional(Type.String()),
          q: Type.Optional(Type.String()),
          limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 5000, default: 1000 })),
          offset: Type.Optional(Type.Integer({ minimum: 0, default: 0 })),
        }),
      },
      config: { auth: 'public' },
    },
    async (request) => {
      const q = request.query as { provider?: string; q?: string; limit: number; offset: number };
      let list = grouped(q.provider?.toLowerCase());
      if (q.q) {
        const needle = q.q.toLowerCase();
        list = list.filter(
          (l) => l[0]!.id.toLowerCase().includes(needle) || l[0]!.name.toLowerCase().includes(needle),
        );
      }
      const page = list.slice(q.offset, q.offset + q.limit);
      return { data: page.map(modelView), total: list.length, limit: q.limit, offset: q.offset };
    },
  );

  const openAiList = async () => ({
    object: 'list',
    data: grouped().map((l) => ({ id: l[0]!.id, object: 'model', created: 0, owned_by: l[0]!.provider })),
  });
  app.get(
    '/v1/models',
    { schema: { tags: ['catalog'], summary: 'Models (OpenAI list shape)' }, config: { auth: 'public' } },
    openAiList,
  );

  app.get(
    '/v1/models/*',
    {
      schema: { tags: ['catalog'], summary: 'One model (OpenAI shape); ids may contain slashes' },
      config: { auth: 'public' },
    },
    async (request) => {
      const id = decodeURIComponent((request.params as { '*': string })['*']);
      const entries = catalog.find(id);
      if (!entries.length) throw notFound(`The model '${id}' does not exist`, 'model_not_found', 'model');
      return { id: entries[0]!.id, object: 'model', created: 0, owned_by: entries[0]!.provider };
    },
  );

  const providersView = async () => {
    const counts = new Map<string, number>();
    for (const e of catalog.entries()) counts.set(e.provider, (counts.get(e.provider) ?? 0) + 1);
    const sync = new Map(catalog.syncStatus().map((s) => [s.provider, s]));
    const circuits: BreakerView[] = (await breakers?.view().catch(() => [])) ?? [];
    const circuitOf = (name: string) => {
      const own = circuits.find((c) => c.key === name);
      return {
        state: own?.state ?? 'closed',
        consecutive_failures: own?.consecutive_failures ?? 0,
        retry_at: own?.retry_at ? new Date(own.retry_at).toISOString() : null,
        // per provider+model breakers that are not closed
        models: circuits
          .filter((c) => c.key.startsWith(`${name}|`) && c.state !== 'closed')
          .map((c) => ({ model: c.key.slice(name.length + 1), state: c.state })),
      };
    };
    return {
      data: Object.values(PROVIDERS).map((def) => {
        const s = sync.get(def.name);
        const enabled = catalog.providers.has(def.name);
        return {
          name: def.name,
          display_name: def.displayName,
          enabled,
          status: !enabled ? 'disabled' : (s?.status ?? 'pending'),
          model_count: counts.get(def.name) ?? 0,
          last_sync_at: s?.last_sync_at ? new Date(s.last_sync_at).toISOString() : null,
          last_error: s?.last_error ?? null,
          circuit: circuitOf(def.name),
        };
      }),
    };
  };
  for (const url of ['/models/providers', '/v1/provider']) {
    app.get(
      url,
      {
        schema: { tags: ['catalog'], summary: 'Providers: model count, status, last sync' },
        config: { auth: 'public' },
      },
      providersView,
    );
  }
}
