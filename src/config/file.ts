import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { ConfigError } from './error.js';

/**
 * Optional JSON config file (GATEWAYZ_CONFIG, default ./gatewayz.config.json when present) adding
 * structure env variables cannot carry: prices for providers that publish none, a default price,
 * provider order. Prices are USD per million tokens (request/image: USD per unit).
 */
export interface PriceSpec {
  prompt: number | string;
  completion: number | string;
  cache_read?: number | string;
  cache_write?: number | string;
  reasoning?: number | string;
  request?: number | string;
  image?: number | string;
  /** Image models: USD per image by size (`{"1024x1024": 0.04}`); `image` is the price for other sizes. */
  image_sizes?: Record<string, number | string>;
}

export interface FileConfig {
  providerOrder?: string[];
  /** provider → model id (as the provider names it) → price */
  prices: Record<string, Record<string, PriceSpec>>;
  /** Price for models no catalog or price entry covers. Unset → such models are refused. */
  defaultPrice: PriceSpec | null;
  /** Extra models a provider serves that its /models does not list: provider → [{id, context_length?, …}] */
  models: Record<
    string,
    Array<{ id: string; name?: string; context_length?: number; max_output_tokens?: number }>
  >;
  /** Minimum completion tokens a request must be able to afford before max_tokens is capped. */
  minAffordableTokens: number;
  /** Routing (see src/routing/config.ts): model → fallback models, in order. */
  fallbacks?: Record<string, string[]>;
  /** Routing: model id (or `*`) → {strategy: weighted|latency|ordered, weights: {provider: n}, sticky}. */
  balancing?: Record<
    string,
    { strategy?: 'weighted' | 'latency' | 'ordered'; weights?: Record<string, number>; sticky?: boolean }
  >;
  /** Routing: provider → {connectMs, firstByteMs, idleMs} overriding the UPSTREAM_* timeouts. */
  providerTimeouts?: Record<string, { connectMs?: number; firstByteMs?: number; idleMs?: number }>;
  /** Response cache: API key ids whose cacheable requests are always cached. */
  cacheKeys?: string[];
}

export function parseFileConfig(pathFromEnv: string | undefined): FileConfig {
  const path = pathFromEnv ? resolve(pathFromEnv) : resolve('gatewayz.config.json');
  const empty: FileConfig = { prices: {}, defaultPrice: null, models: {}, minAffordableTokens: 16 };
  if (!existsSync(path)) {
    if (pathFromEnv) throw new ConfigError(`GATEWAYZ_CONFIG: file not found: ${path}`);
    return empty;
  }
  let raw: any;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new ConfigError(`GATEWAYZ_CONFIG: ${path} is not valid JSON: ${(e as Error).message}`);
  }
  if (typeof raw !== 'object' || raw === null)
    throw new ConfigError(`GATEWAYZ_CONFIG: ${path} must hold a JSON object`);
  return {
    providerOrder: Array.isArray(raw.providerOrder) ? raw.providerOrder.map(String) : undefined,
    prices: raw.prices ?? {},
    defaultPrice: raw.defaultPrice ?? null,
    models: raw.models ?? {},
    minAffordableTokens: Number.isInteger(raw.minAffordableTokens) ? raw.minAffordableTokens : 16,
    ...Object.fromEntries(
      Object.entries(raw).filter(
        ([k]) => !['providerOrder', 'prices', 'defaultPrice', 'models', 'minAffordableTokens'].includes(k),
      ),
    ),
  } as FileConfig;
}
