import { scaledToDecimal } from '../../lib/decimal.js';
import { perMillionUsdToMicrosPerM } from '../../lib/money.js';
import type { CatalogModel } from '../types.js';
import { parseOpenAiStyleCatalog } from './catalog.js';

/**
 * For providers whose catalog publishes prices in USD per million tokens (numbers): read the
 * OpenAI-style list, then convert the named price fields to OpenRouter's per-token strings,
 * exactly (no floating point). `fields` maps the provider's names to ours.
 */
export function perMillionCatalog(fields: Record<string, string>, maxOutputField?: string) {
  return (body: unknown): CatalogModel[] =>
    parseOpenAiStyleCatalog(body).map((m) => {
      const raw = m.raw as Record<string, any>;
      const pricing: Record<string, string> = {};
      for (const [theirs, ours] of Object.entries(fields)) {
        const v = raw?.pricing?.[theirs];
        const n = typeof v === 'number' || typeof v === 'string' ? perMillionUsdToMicrosPerM(v) : null;
        if (n !== null) pricing[ours] = scaledToDecimal(n, 12);
      }
      const maxOut = maxOutputField && typeof raw?.[maxOutputField] === 'number' ? raw[maxOutputField] : null;
      return {
        ...m,
        pricing: pricing.prompt !== undefined && pricing.completion !== undefined ? pricing : null,
        maxOutputTokens: m.maxOutputTokens ?? maxOut,
      };
    });
}
