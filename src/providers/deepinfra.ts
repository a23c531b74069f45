import { parseOpenAiStyleCatalog } from './openai-compatible/catalog.js';
import type { ProviderDefinition } from './types.js';

/** DeepInfra's OpenAI-compatible API; its model list carries no prices, so they come from the config file. */
export const deepinfra: ProviderDefinition = {
  name: 'deepinfra',
  displayName: 'DeepInfra',
  defaultBaseUrl: 'https://api.deepinfra.com/v1/openai',
  wire: 'openai',
  headers: (s) => ({ authorization: `Bearer ${s.apiKey}` }),
  parseCatalog: (b) => parseOpenAiStyleCatalog(b),
};
