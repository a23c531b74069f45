import type { Catalog } from '../catalog/service.js';
import type { AggregateRow, GroupBy, RankingsStore } from './store.js';

export const WINDOWS = { day: 86_400_000, week: 7 * 86_400_000, month: 30 * 86_400_000 } as const;
export type Window = keyof typeof WINDOWS;
export type ModelSort = 'tokens' | 'requests' | 'users' | 'growth' | 'latency';

interface Computed {
  at: number;
  from: number;
  to: number;
  rows: Array<{ cur: AggregateRow; prevRequests: number; prevTokens: number; median: number | null }>;
}

const growth = (cur: number, prev: number): number | null =>
  prev === 0 ? null : Math.round(((cur - prev) / prev) * 10_000) / 10_000;

/**
 * Model and app rankings from the gateway's own usage. Each (kind, window) is computed by SQL
 * aggregates at most once per `ttlMs` and served from memory in between — a refreshed summary,
 * not a scan per call.
 */
export class RankingsService {
  private readonly cache = new Map<string, Computed>();
  private readonly inFlight = new Map<string, Promise<Computed>>();

  constructor(
    private readonly store: RankingsStore,
    private readonly catalog: Catalog,
    private readonly ttlMs = 60_000,
    private readonly now: () => number = Date.now,
  ) {}

  private async computed(by: GroupBy, window: Window): Promise<Computed> {
    const key = `${by}:${window}`;
    const hit = this.cache.get(key);
    const now = this.now();
    if (hit && now - hit.at < this.ttlMs) return hit;
    const pending = this.inFlight.get(key);
    if (pending) return pending;
    const p = (async () => {
      const span = WINDOWS[window];
      const to = now;
      const from = to - span;
      const [cur, prev, medians] = await Promise.all([
        this.store.aggregate(by, from, to),
        this.store.aggregate(by, from - span, from),
        this.store.medianLatency(by, from, to),
      ]);
      const prevBy = new Map(prev.map((r) => [r.key, r]));
      const c: Computed = {
        at: now,
        from,
        to,
        rows: cur.map((r) => {
          const p = prevBy.get(r.key);
          return {
            cur: r,
            prevRequests: p?.requests ?? 0,
            prevTokens: p ? p.prompt_tokens + p.completion_tokens : 0,
            median: medians.get(r.key) ?? null,
          };
        }),
      };
      this.cache.set(key, c);
      return c;
    })().finally(() => this.inFlight.delete(key));
    this.inFlight.set(key, p);
    return p;
  }

  async models(window: Window, sort: ModelSort, limit: number) {
    const c = await this.computed('model', window);
    const list = c.rows.map(({ cur, prevRequests, prevTokens, median }) => {
      const entries = this.catalog.find(cur.key);
      const e = entries[0];
      const tokens = cur.prompt_tokens + cur.completion_tokens;
      return {
        model: cur.key,
        name: e?.name ?? cur.key,
        provider: e?.provider ?? null,
        providers: entries.map((x) => x.provider),
        context_length: e?.contextLength ?? null,
        pricing:
          e?.price != null
            ? {
                prompt_usd_per_million: e.price.prompt / 1e6,
                completion_usd_per_million: e.price.completion / 1e6,
                image_usd: e.price.image === null ? null : e.price.image / 1e6,
              }
            : null,
        requests: cur.requests,
        prompt_tokens: cur.prompt_tokens,
        completion_tokens: cur.completion_tokens,
        total_tokens: tokens,
        users: cur.users,
        median_latency_ms: median === null ? null : Math.round(median * 100) / 100,
        error_rate: cur.requests === 0 ? 0 : Math.round((cur.errors / cur.requests) * 10_000) / 10_000,
        growth: { requests: growth(cur.requests, prevRequests), tokens: growth(tokens, prevTokens) },
        previous: { requests: prevRequests, total_tokens: prevTokens },
      };
    });
    const key: Record<ModelSort, (x: (typeof list)[number]) => number> = {
      tokens: (x) => x.total_tokens,
      requests: (x) => x.requests,
      users: (x) => x.users,
      growth: (x) => x.growth.requests ?? Number.NEGATIVE_INFINITY,
      // fastest first
      latency: (x) => -(x.median_latency_ms ?? Number.POSITIVE_INFINITY),
    };
    list.sort(
      (a, b) => key[sort](b) - key[sort](a) || b.requests - a.requests || a.model.localeCompare(b.model),
    );
    return {
      window,
      from: c.from,
      to: c.to,
      generated_at: c.at,
      data: list.slice(0, limit).map((x, i) => ({ rank: i + 1, ...x })),
    };
  }

  async apps(window: Window, limit: number) {
    const c = await this.computed('app', window);
    const list = c.rows.map(({ cur, prevRequests, prevTokens, median }) => {
      const tokens = cur.prompt_tokens + cur.completion_tokens;
      return {
        app: cur.key,
        requests: cur.requests,
        total_tokens: tokens,
        users: cur.users,
        models: cur.models,
        median_latency_ms: median === null ? null : Math.round(median * 100) / 100,
        error_rate: cur.requests === 0 ? 0 : Math.round((cur.errors / cur.requests) * 10_000) / 10_000,
        growth: { requests: growth(cur.requests, prevRequests), tokens: growth(tokens, prevTokens) },
      };
    });
    list.sort(
      (a, b) => b.total_tokens - a.total_tokens || b.requests - a.requests || a.app.localeCompare(b.app),
    );
    return {
      window,
      from: c.from,
      to: c.to,
      generated_at: c.at,
      data: list.slice(0, limit).map((x, i) => ({ rank: i + 1, ...x })),
    };
  }
}
