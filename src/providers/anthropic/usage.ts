import { emptyUsage, type Usage } from '../../billing/cost.js';

const MAX_TOKENS = 50_000_000;
const tok = (v: unknown): number | null =>
  v === undefined || v === null
    ? 0
    : typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 && v <= MAX_TOKENS
      ? v
      : null;

/** Anthropic's usage counters as they accumulate over a message (or stream). */
export interface AnthropicUsage {
  input_tokens: number;
  output_tokens: number;
  cache_read_input_tokens: number;
  cache_creation_input_tokens: number;
}

/**
 * Merge a usage object from a message, `message_start` or `message_delta` into `into`. Returns false
 * when a value is not plausible. Fields absent from `u` keep their earlier value (a delta carries
 * only what changed).
 */
export function mergeAnthropicUsage(into: Partial<AnthropicUsage>, u: any): boolean {
  if (!u || typeof u !== 'object') return false;
  for (const k of [
    'input_tokens',
    'output_tokens',
    'cache_read_input_tokens',
    'cache_creation_input_tokens',
  ] as const) {
    if (u[k] === undefined || u[k] === null) continue;
    const v = tok(u[k]);
    if (v === null) return false;
    into[k] = v;
  }
  return true;
}

/**
 * Anthropic usage → our Usage. Anthropic's `input_tokens` EXCLUDES cache reads and writes, while
 * our promptTokens (like OpenAI's prompt_tokens) is the total, with cached/cache-write as subsets.
 */
export function usageFromAnthropic(u: Partial<AnthropicUsage> | null | undefined): Usage | null {
  if (!u || u.input_tokens === undefined || u.output_tokens === undefined) return null;
  const read = u.cache_read_input_tokens ?? 0;
  const written = u.cache_creation_input_tokens ?? 0;
  return {
    ...emptyUsage(),
    promptTokens: u.input_tokens + read + written,
    completionTokens: u.output_tokens,
    cachedTokens: read,
    cacheWriteTokens: written,
  };
}

/** A validated Usage from an Anthropic usage object, or null. */
export function parseAnthropicUsage(u: unknown): Usage | null {
  const acc: Partial<AnthropicUsage> = {};
  if (!mergeAnthropicUsage(acc, u)) return null;
  return usageFromAnthropic(acc);
}

/** Our Usage in OpenAI's chat `usage` shape (OpenRouter's cache_write_tokens included). */
export function openAiUsageOf(u: Usage): Record<string, unknown> {
  return {
    prompt_tokens: u.promptTokens,
    completion_tokens: u.completionTokens,
    total_tokens: u.promptTokens + u.completionTokens,
    prompt_tokens_details: { cached_tokens: u.cachedTokens, cache_write_tokens: u.cacheWriteTokens },
    completion_tokens_details: { reasoning_tokens: u.reasoningTokens },
  };
}

/** Our Usage in Anthropic's shape: input_tokens excludes cache reads and writes. */
export function anthropicUsageOf(u: Usage): AnthropicUsage {
  return {
    input_tokens: Math.max(0, u.promptTokens - u.cachedTokens - u.cacheWriteTokens),
    output_tokens: u.completionTokens,
    cache_read_input_tokens: u.cachedTokens,
    cache_creation_input_tokens: u.cacheWriteTokens,
  };
}
