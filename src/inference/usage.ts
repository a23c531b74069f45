import { emptyUsage, type Usage } from '../billing/cost.js';

const MAX_TOKENS = 50_000_000;
const tok = (v: unknown): number | null =>
  v === undefined || v === null
    ? 0
    : typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 && v <= MAX_TOKENS
      ? v
      : null;

/**
 * Usage as OpenAI-shaped upstreams report it (OpenRouter adds cache-write tokens). Validated:
 * null when absent or not plausible (negative, fractional, absurdly large), so the caller counts instead.
 */
export function usageFromOpenAi(u: any): Usage | null {
  if (!u || typeof u !== 'object') return null;
  const prompt = tok(u.prompt_tokens ?? u.input_tokens);
  const completion = tok(u.completion_tokens ?? u.output_tokens);
  if (prompt === null || completion === null) return null;
  if (u.prompt_tokens === undefined && u.input_tokens === undefined) return null;
  const pd = u.prompt_tokens_details ?? u.input_tokens_details;
  const cd = u.completion_tokens_details ?? u.output_tokens_details;
  const cached = tok(pd?.cached_tokens) ?? 0;
  const written = tok(pd?.cache_write_tokens) ?? 0;
  const reasoning = tok(cd?.reasoning_tokens) ?? 0;
  return {
    ...emptyUsage(),
    promptTokens: prompt,
    completionTokens: completion,
    cachedTokens: Math.min(cached, prompt),
    cacheWriteTokens: Math.min(written, prompt),
    reasoningTokens: Math.min(reasoning, completion),
  };
}
