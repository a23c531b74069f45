import type { FastifyBaseLogger } from 'fastify';
import type { Price } from '../billing/cost.js';
import type { Config } from '../config/config.js';
import { RequestAbort } from '../lib/abort.js';
import type { CatalogModel, ProviderDefinition } from '../providers/types.js';
import type { Upstreams } from '../providers/upstream.js';
import { priceFromPerToken, priceFromSpec } from './price.js';
import type { CatalogStore, ModelRow, ProviderSyncRow } from './store.js';

export interface CatalogEntry {
  provider: string;
  id: string;
  upstreamId: string;
  name: string;
  description: string | null;
  contextLength: number | null;
  maxOutputTokens: number | null;
  /** Null: no known price (served only when the operator set a default price). */
  price: Price | null;
  modality: string | null;
  raw: string | null;
}

export interface EnabledProvider {
  def: ProviderDefinition;
  baseUrl: string;
  headers: Record<string, string>;
}

/** The model catalog: kept in the database, indexed in memory, refreshed from each provider's /models. */
export class Catalog {
  private byId = new Map<string, CatalogEntry[]>();
  /** Changes whenever the index is rebuilt (what `find` answers may have changed). */
  version = 0;
  private all: CatalogEntry[] = [];
  private sync: ProviderSyncRow[] = [];
  private readonly defaultPrice: Price | null;
  private readonly overrides = new Map<string, Price>();

  constructor(
    private readonly store: CatalogStore,
    private readonly upstreams: Upstreams,
    readonly providers: Map<string, EnabledProvider>,
    private readonly config: Config,
    private readonly log: FastifyBaseLogger,
  ) {
    this.defaultPrice = config.file.defaultPrice
      ? priceFromSpec(config.file.defaultPrice, 'defaultPrice')
      : null;
    for (const [provider, models] of Object.entries(config.file.prices)) {
      for (const [id, spec] of Object.entries(models)) {
        this.overrides.set(`${provider}\u0000${id}`, priceFromSpec(spec, `prices.${provider}.${id}`));
      }
    }
  }

  /** Load what the database holds (serves immediately, even when every upstream is down). */
  async load(): Promise<void> {
    const rows = await this.store.allModels();
    this.index(rows.map(rowToEntry));
    this.sync = await this.store.syncStatus();
  }

  /** Refresh every enabled provider's catalog; a provider that fails keeps its stored models. */
  async syncAll(): Promise<void> {
    await Promise.all([...this.providers.values()].map((p) => this.syncProvider(p)));
    await this.load();
  }

  private async syncProvider(p: EnabledProvider): Promise<void> {
    const name = p.def.name;
    const abort = new RequestAbort();
    const timer = setTimeout(() => abort.abort(new Error('catalog request timed out after 30 s')), 30_000);
    try {
      const res = await this.upstreams.request({
        baseUrl: p.baseUrl,
        path: p.def.catalogPath ?? '/models',
        method: 'GET',
        headers: p.headers,
        abort,
      });
      const text = await res.body.text();
      if (res.statusCode !== 200) throw new Error(`HTTP ${res.statusCode}: ${text.slice(0, 200)}`);
      const models = p.def.parseCatalog(JSON.parse(text));
      for (const extra of this.config.file.models[name] ?? []) {
        if (models.some((m) => m.upstreamId === extra.id)) continue;
        const id =
          p.def.namespace && !extra.id.startsWith(p.def.namespace) ? p.def.namespace + extra.id : extra.id;
        models.push({
          id,
          upstreamId: extra.id,
          name: extra.name ?? extra.id,
          description: null,
          contextLength: extra.context_length ?? null,
          maxOutputTokens: extra.max_output_tokens ?? null,
          pricing: null,
          modality: null,
          raw: extra,
        });
      }
      const now = Date.now();
      await this.store.replaceProvider(
        name,
        models.map((m) => this.toRow(name, m, now)),
        now,
      );
      this.log.info({ provider: name, models: models.length }, 'catalog synced');
    } catch (err) {
      const message = (err as Error).message ?? String(err);
      this.log.warn({ provider: name, error: message }, 'catalog sync failed; keeping stored models');
      await this.store.markFailed(name, message);
    } finally {
      clearTimeout(timer);
    }
  }

  private toRow(provider: string, m: CatalogModel, now: number): ModelRow {
    const price =
      this.overrides.get(`${provider}\u0000${m.upstreamId}`) ??
      this.overrides.get(`${provider}\u0000${m.id}`) ??
      priceFromPerToken(m.pricing);
    return {
      provider,
      model_id: m.id,
      upstream_id: m.upstreamId,
      name: m.name,
      description: m.description,
      context_length: m.contextLength,
      max_output_tokens: m.maxOutputTokens,
      prompt_micros_per_m: price?.prompt ?? null,
      completion_micros_per_m: price?.completion ?? null,
      cache_read_micros_per_m: price?.cacheRead ?? null,
      cache_write_micros_per_m: price?.cacheWrite ?? null,
      reasoning_micros_per_m: price?.reasoning ?? null,
      request_micros: price?.request ?? null,
      image_micros: price?.image ?? null,
      modality: m.modality,
      raw: m.raw === undefined ? null : JSON.stringify(m.raw),
      updated_at: now,
    };
  }

  private index(entries: CatalogEntry[]): void {
    const byId = new Map<string, CatalogEntry[]>();
    for (const e of entries) {
      const price = e.price ?? this.defaultPrice;
      const entry = price === e.price ? e : { ...e, price };
      const list = byId.get(e.id);
      if (list) list.push(entry);
      else byId.set(e.id, [entry]);
    }
    this.byId = byId;
    this.all = [...byId.values()].flat();
    this.version++;
  }

  /** Entries serving `id` (exact, case kept), or a namespaced id for a bare one (`gpt-4o` → `openai/gpt-4o`). */
  find(id: string): CatalogEntry[] {
    const exact = this.byId.get(id);
    if (exact) return exact;
    if (!id.includes('/')) {
      for (const p of this.providers.values()) {
        const ns = p.def.namespace;
        if (ns) {
          const hit = this.byId.get(ns + id);
          if (hit) return hit;
        }
      }
    }
    return [];
  }

  entries(): readonly CatalogEntry[] {
    return this.all;
  }

  syncStatus(): readonly ProviderSyncRow[] {
    return this.sync;
  }
}

function rowToEntry(r: ModelRow): CatalogEntry {
  const price: Price | null =
    r.prompt_micros_per_m === null || r.completion_micros_per_m === null
      ? null
      : {
          prompt: r.prompt_micros_per_m,
          completion: r.completion_micros_per_m,
          cacheRead: r.cache_read_micros_per_m,
          cacheWrite: r.cache_write_micros_per_m,
          reasoning: r.reasoning_micros_per_m,
          request: r.request_micros,
          image: r.image_micros,
        };
  return {
    provider: r.provider,
    id: r.model_id,
    upstreamId: r.upstream_id,
    name: r.name,
    description: r.description,
    contextLength: r.context_length,
    maxOutputTokens: r.max_output_tokens,
    price,
    modality: r.modality,
    raw: r.raw,
  };
}
