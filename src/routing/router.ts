import type { Catalog, CatalogEntry, EnabledProvider } from '../catalog/service.js';
import { badRequest, GatewayError, notFound } from '../lib/errors.js';
import type { Balancer } from './balancer.js';

export interface Target {
  provider: EnabledProvider;
  entry: CatalogEntry;
}

/** OpenRouter's `provider` routing object (or a provider name string). */
export interface ProviderPreference {
  order?: string[];
  allowFallbacks?: boolean;
  only?: string[];
  ignore?: string[];
}

export function parseProviderPreference(v: unknown): ProviderPreference | null {
  if (v === undefined || v === null) return null;
  if (typeof v === 'string') {
    if (!v.trim()) throw badRequest('provider must be a non-empty string or an object', 'provider');
    return { order: [v.trim().toLowerCase()], allowFallbacks: false };
  }
  if (typeof v !== 'object' || Array.isArray(v))
    throw badRequest('provider must be a string or an object', 'provider');
  const o = v as Record<string, unknown>;
  const list = (k: string) => {
    const x = o[k];
    if (x === undefined || x === null) return undefined;
    if (!Array.isArray(x) || x.some((s) => typeof s !== 'string')) {
      throw badRequest(`provider.${k} must be an array of provider names`, `provider.${k}`);
    }
    return (x as string[]).map((s) => s.toLowerCase());
  };
  const allow = o.allow_fallbacks;
  if (allow !== undefined && typeof allow !== 'boolean') {
    throw badRequest('provider.allow_fallbacks must be a boolean', 'provider.allow_fallbacks');
  }
  return { order: list('order'), only: list('only'), ignore: list('ignore'), allowFallbacks: allow ?? true };
}

/**
 * Which providers serve `model`, best first: the caller's explicit choice wins over the configured
 * preference order. Model ids keep their case.
 */
export class Router {
  private readonly rank: Map<string, number>;
  /** `resolve(model, null)` per model, for the catalog's `version` (the common request: no provider preference). */
  private readonly plain = new Map<string, readonly Target[]>();
  private plainVersion = -1;

  constructor(
    private readonly catalog: Catalog,
    providerOrder: string[],
    private readonly routing: { fallbacks?: Record<string, string[]>; balancer?: Balancer } = {},
  ) {
    this.rank = new Map(providerOrder.map((p, i) => [p, i]));
  }

  /**
   * Every target to try for a request, in order: the model's providers (balanced unless the caller
   * ordered them), then the request's `models` list, then the model's configured fallback chain.
   * A fallback model that cannot be served is skipped; the primary's error is raised only when
   * nothing at all can serve the request.
   */
  plan(
    model: string,
    pref: ProviderPreference | null,
    opts: { fallbackModels?: readonly string[] | null; user?: { key: string | null; asked: boolean } } = {},
  ): readonly Target[] {
    // The common request: one model, no fallbacks, one provider: its cached targets as they are.
    if (!opts.fallbackModels?.length && !this.routing.fallbacks?.[model]) {
      const targets = this.resolve(model, pref);
      if (targets.length < 2 || !this.routing.balancer || pref?.order?.length) return targets;
    }
    const models: string[] = [];
    const add = (m: string) => {
      if (!models.includes(m)) models.push(m);
    };
    add(model);
    for (const m of opts.fallbackModels ?? []) add(m);
    for (const m of [...models]) for (const f of this.routing.fallbacks?.[m] ?? []) add(f);
    const out: Target[] = [];
    let firstError: unknown = null;
    for (const m of models) {
      let targets: readonly Target[];
      try {
        targets = this.resolve(m, pref);
      } catch (err) {
        firstError ??= err;
        continue;
      }
      const balancer = this.routing.balancer;
      if (balancer && !pref?.order?.length) {
        const ordered = balancer.order(
          targets[0]!.entry.id,
          targets.map((t) => ({ provider: t.provider.def.name, t })),
          opts.user,
        );
        targets = ordered.map((x) => x.t);
      }
      for (const t of targets)
        if (!out.some((o) => o.provider === t.provider && o.entry.id === t.entry.id)) out.push(t);
    }
    if (out.length === 0) throw firstError;
    return out;
  }

  /** The targets serving `model`, best first (shared when `pref` is null: never mutate the array). */
  resolve(model: string, pref: ProviderPreference | null): readonly Target[] {
    if (pref !== null) return this.resolveFor(model, pref);
    if (this.plainVersion !== this.catalog.version) {
      this.plain.clear();
      this.plainVersion = this.catalog.version;
    }
    let t = this.plain.get(model);
    if (!t) {
      t = this.resolveFor(model, null); // throws for a model it cannot serve: nothing cached then
      this.plain.set(model, t);
    }
    return t;
  }

  private resolveFor(model: string, pref: ProviderPreference | null): Target[] {
    const entries = this.catalog.find(model);
    const providers = this.catalog.providers;
    for (const name of [...(pref?.order ?? []), ...(pref?.only ?? [])]) {
      if (!providers.has(name)) {
        throw badRequest(
          `provider "${name}" is not enabled on this gateway`,
          'provider',
          'provider_not_available',
        );
      }
    }
    if (entries.length === 0) {
      throw notFound(
        `The model '${model}' does not exist or is not served by any enabled provider`,
        'model_not_found',
        'model',
      );
    }
    let candidates = entries.filter((e) => providers.has(e.provider));
    if (pref?.only) candidates = candidates.filter((e) => pref.only!.includes(e.provider));
    if (pref?.ignore) candidates = candidates.filter((e) => !pref.ignore!.includes(e.provider));
    const order = pref?.order ?? [];
    if (order.length && pref?.allowFallbacks === false)
      candidates = candidates.filter((e) => order.includes(e.provider));
    const rankOf = (p: string) => {
      const i = order.indexOf(p);
      return i >= 0 ? i - 1000 : (this.rank.get(p) ?? 999);
    };
    candidates.sort((a, b) => rankOf(a.provider) - rankOf(b.provider));
    if (candidates.length === 0) {
      const by = pref?.order?.join(', ') || pref?.only?.join(', ') || 'the requested providers';
      throw notFound(`The model '${model}' is not served by ${by}`, 'model_not_found', 'model');
    }
    const priced = candidates.filter((e) => e.price !== null);
    if (priced.length === 0) {
      throw new GatewayError(
        400,
        `The model '${model}' has no known price on this gateway; the operator must configure one`,
        {
          code: 'model_not_priced',
          param: 'model',
        },
      );
    }
    return priced.map((entry) => ({ provider: providers.get(entry.provider)!, entry }));
  }
}
