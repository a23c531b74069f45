import { perMillionCatalog } from './openai-compatible/per-million.js';
import type { ProviderDefinition } from './types.js';

/** Together AI: OpenAI wire format; its /models is a bare array with `pricing.input/output` in USD per million tokens. */
export const together: ProviderDefinition = {
  name: 'together',
  displayName: 'Together AI',
  defaultBaseUrl: 'https://api.together.xyz/v1',
  wire: 'openai',
  headers: (s) => ({ authorization: `Bearer ${s.apiKey}` }),
  parseCatalog: perMillionCatalog({
    input: 'prompt',
    output: 'completion',
    cached_input: 'input_cache_read',
  }),
};
