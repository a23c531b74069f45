import type { CatalogModel } from '../types.js';

const num = (v: unknown): number | null =>
  typeof v === 'number' && Number.isFinite(v) && v > 0 ? Math.floor(v) : null;
const str = (v: unknown): string | null => (typeof v === 'string' && v !== '' ? v : null);

function listOf(body: unknown): any[] {
  if (Array.isArray(body)) return body;
  const data = (body as { data?: unknown })?.data;
  if (Array.isArray(data)) return data;
  throw new Error('catalog response has no data array');
}

/**
 * Reads an OpenAI-style `{data:[{id,…}]}` list, also picking up OpenRouter's richer fields
 * (pricing strings, context_length, top_provider) when a provider sends them.
 */
export function parseOpenAiStyleCatalog(body: unknown, namespace = ''): CatalogModel[] {
  const out: CatalogModel[] = [];
  for (const m of listOf(body)) {
    const upstreamId = str(m?.id);
    if (!upstreamId) continue;
    const pricing =
      m.pricing && typeof m.pricing === 'object' ? (m.pricing as Record<string, string | number>) : null;
    out.push({
      id: namespace && !upstreamId.startsWith(namespace) ? namespace + upstreamId : upstreamId,
      upstreamId,
      name: str(m.name) ?? upstreamId,
      description: str(m.description),
      contextLength: num(m.context_length) ?? num(m.top_provider?.context_length) ?? num(m.max_model_len),
      maxOutputTokens:
        num(m.top_provider?.max_completion_tokens) ??
        num(m.max_output_tokens) ??
        num(m.max_completion_tokens),
      pricing,
      modality: str(m.architecture?.modality),
      raw: m,
    });
  }
  return out;
}
