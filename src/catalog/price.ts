import type { Price } from '../billing/cost.js';
import type { PriceSpec } from '../config/file.js';
import { perMillionUsdToMicrosPerM, perTokenUsdToMicrosPerM, usdStringToMicros } from '../lib/money.js';

/** OpenRouter per-token USD strings → Price. Null when prompt/completion are missing or negative (e.g. "-1" for routers). */
export function priceFromPerToken(p: Record<string, string | number> | null): Price | null {
  if (!p) return null;
  const prompt = perTokenUsdToMicrosPerM(p.prompt);
  const completion = perTokenUsdToMicrosPerM(p.completion);
  if (prompt === null || completion === null) return null;
  return {
    prompt,
    completion,
    cacheRead: perTokenUsdToMicrosPerM(p.input_cache_read),
    cacheWrite: perTokenUsdToMicrosPerM(p.input_cache_write),
    reasoning: nonZero(perTokenUsdToMicrosPerM(p.internal_reasoning)),
    request: nonZero(usdStringToMicros(p.request)),
    image: nonZero(usdStringToMicros(p.image)),
  };
}

/** Operator price (USD per million tokens; request/image USD per unit) → Price. Throws on a malformed entry. */
export function priceFromSpec(s: PriceSpec, where: string): Price {
  // An image model priced per image needs no token prices.
  const perImageOnly = s.image !== undefined || s.image_sizes !== undefined;
  const req = (v: number | string | undefined, field: string) => {
    if (v === undefined && perImageOnly) return 0;
    const n = v === undefined ? null : perMillionUsdToMicrosPerM(v);
    if (n === null)
      throw new Error(`${where}.${field} must be a non-negative number (USD per million tokens)`);
    return n;
  };
  const opt = (v: number | string | undefined, field: string, unit = false) => {
    if (v === undefined) return null;
    const n = unit ? usdStringToMicros(v) : perMillionUsdToMicrosPerM(v);
    if (n === null) throw new Error(`${where}.${field} must be a non-negative number`);
    return n;
  };
  return {
    prompt: req(s.prompt, 'prompt'),
    completion: req(s.completion, 'completion'),
    cacheRead: opt(s.cache_read, 'cache_read'),
    cacheWrite: opt(s.cache_write, 'cache_write'),
    reasoning: opt(s.reasoning, 'reasoning'),
    request: opt(s.request, 'request', true),
    image: opt(s.image, 'image', true),
  };
}

const nonZero = (n: number | null) => (n === 0 ? null : n);
