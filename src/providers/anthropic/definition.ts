import type { CatalogModel, ProviderDefinition } from '../types.js';

export const ANTHROPIC_VERSION = '2023-06-01';

const str = (v: unknown): string | null => (typeof v === 'string' && v !== '' ? v : null);

/** Anthropic's `GET /v1/models`: `{data:[{type:"model", id, display_name, created_at}], has_more}`. No prices. */
export function parseAnthropicCatalog(body: unknown): CatalogModel[] {
  const data = (body as { data?: unknown })?.data;
  if (!Array.isArray(data)) throw new Error('catalog response has no data array');
  const out: CatalogModel[] = [];
  for (const m of data) {
    const upstreamId = str(m?.id);
    if (!upstreamId) continue;
    out.push({
      id: upstreamId.startsWith('anthropic/') ? upstreamId : `anthropic/${upstreamId}`,
      upstreamId,
      name: str(m.display_name) ?? upstreamId,
      description: null,
      contextLength: typeof m.context_length === 'number' ? m.context_length : null,
      maxOutputTokens: typeof m.max_tokens === 'number' ? m.max_tokens : null,
      pricing: null,
      modality: 'text+image->text',
      raw: m,
    });
  }
  return out;
}

/** Anthropic's Messages API (native wire `anthropic`); ids are served as `anthropic/<id>`. */
export const anthropic: ProviderDefinition = {
  name: 'anthropic',
  displayName: 'Anthropic',
  defaultBaseUrl: 'https://api.anthropic.com/v1',
  wire: 'anthropic',
  namespace: 'anthropic/',
  headers: (s) => ({ 'x-api-key': s.apiKey, 'anthropic-version': ANTHROPIC_VERSION }),
  parseCatalog: parseAnthropicCatalog,
  // Anthropic pages its model list (20 by default); one page of the maximum size holds them all.
  catalogPath: '/models?limit=1000',
};
