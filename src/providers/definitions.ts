import { scaledToDecimal } from '../lib/decimal.js';
import { perMillionUsdToMicrosPerM } from '../lib/money.js';
import { anthropic } from './anthropic/definition.js';
import { parseOpenAiStyleCatalog } from './openai-compatible/catalog.js';
import type { CatalogModel, ProviderDefinition } from './types.js';

/** Chutes publishes prices in USD per million tokens (numbers): convert to per-token strings, exactly. */
function chutesCatalog(body: unknown): CatalogModel[] {
  return parseOpenAiStyleCatalog(body).map((m) => {
    const raw = m.raw as { pricing?: Record<string, unknown>; max_output_length?: unknown };
    const pricing: Record<string, string> = {};
    for (const [k, v] of Object.entries(raw?.pricing ?? {})) {
      const n = typeof v === 'number' || typeof v === 'string' ? perMillionUsdToMicrosPerM(v) : null;
      if (n !== null) pricing[k] = scaledToDecimal(n, 12);
    }
    const maxOut = typeof raw?.max_output_length === 'number' ? raw.max_output_length : null;
    return {
      ...m,
      pricing: pricing.prompt && pricing.completion ? pricing : null,
      maxOutputTokens: m.maxOutputTokens ?? maxOut,
    };
  });
}

const bearer = (key: string) => ({ authorization: `Bearer ${key}` });

export const openrouter: ProviderDefinition = {
  name: 'openrouter',
  displayName: 'OpenRouter',
  defaultBaseUrl: 'https://openrouter.ai/api/v1',
  wire: 'openai',
  headers: (s, app) => ({ ...bearer(s.apiKey), 'http-referer': app.appUrl, 'x-title': app.appName }),
  parseCatalog: (b) => parseOpenAiStyleCatalog(b),
};

export const portkey: ProviderDefinition = {
  name: 'portkey',
  displayName: 'Portkey',
  defaultBaseUrl: 'https://api.portkey.ai/v1',
  wire: 'openai',
  headers: (s) => {
    const h: Record<string, string> = { 'x-portkey-api-key': s.apiKey };
    if (s.extra.PORTKEY_VIRTUAL_KEY) h['x-portkey-virtual-key'] = s.extra.PORTKEY_VIRTUAL_KEY;
    if (s.extra.PORTKEY_PROVIDER) h['x-portkey-provider'] = s.extra.PORTKEY_PROVIDER;
    return h;
  },
  parseCatalog: (b) => parseOpenAiStyleCatalog(b),
};

export const featherless: ProviderDefinition = {
  name: 'featherless',
  displayName: 'Featherless',
  defaultBaseUrl: 'https://api.featherless.ai/v1',
  wire: 'openai',
  headers: (s) => bearer(s.apiKey),
  parseCatalog: (b) => parseOpenAiStyleCatalog(b),
};

export const chutes: ProviderDefinition = {
  name: 'chutes',
  displayName: 'Chutes',
  defaultBaseUrl: 'https://llm.chutes.ai/v1',
  wire: 'openai',
  headers: (s) => bearer(s.apiKey),
  parseCatalog: chutesCatalog,
};

export const openai: ProviderDefinition = {
  name: 'openai',
  displayName: 'OpenAI',
  defaultBaseUrl: 'https://api.openai.com/v1',
  wire: 'openai',
  namespace: 'openai/',
  capabilities: { responses: true },
  headers: (s) => bearer(s.apiKey),
  parseCatalog: (b) => parseOpenAiStyleCatalog(b, 'openai/'),
};

/** Every provider the gateway can speak, by name. */
export const PROVIDERS: Record<string, ProviderDefinition> = {
  openrouter,
  portkey,
  featherless,
  chutes,
  openai,
  anthropic,
};
