import { anthropic } from './anthropic/definition.js';
import { deepinfra } from './deepinfra.js';
import { parseOpenAiStyleCatalog } from './openai-compatible/catalog.js';
import { perMillionCatalog } from './openai-compatible/per-million.js';
import { together } from './together.js';
import type { ProviderDefinition } from './types.js';

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
  // Chutes publishes USD per million tokens (numbers), not OpenRouter's per-token strings.
  parseCatalog: perMillionCatalog(
    { prompt: 'prompt', completion: 'completion', input_cache_read: 'input_cache_read' },
    'max_output_length',
  ),
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
  deepinfra,
  together,
};
