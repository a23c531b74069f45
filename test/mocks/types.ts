// Public types of the mock upstream providers (see provider.ts).

export type MockKind = 'openrouter' | 'openai' | 'featherless' | 'chutes' | 'portkey' | 'anthropic';

/** Prices are USD per token (or per unit) as decimal strings, OpenRouter's convention, for every kind. */
export interface MockPricing {
  prompt: string;
  completion: string;
  input_cache_read?: string;
  input_cache_write?: string;
  internal_reasoning?: string;
  request?: string;
  image?: string;
}

export interface MockModel {
  id: string;
  context_length?: number;
  max_completion_tokens?: number;
  pricing?: MockPricing;
}

export interface MockUsage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  cached_tokens?: number;
  reasoning_tokens?: number;
  cache_write_tokens?: number;
  /** OpenRouter only: the `usage.cost` it reported (USD). */
  cost?: number;
}

export interface RecordedCall {
  method: string;
  /** The request target as received (path + query). */
  path: string;
  headers: Record<string, string | string[] | undefined>;
  /** Parsed JSON body; the raw string when it was not JSON; undefined when empty. */
  body: any;
  /** Usage the upstream computed for this request (set once a completion was produced, even if a fault hid it). */
  usage?: MockUsage;
  /** True when that usage actually went out on the wire. */
  usageReported?: boolean;
  /** HTTP status sent; 0 while no response head was written (hang, reset, still pending). */
  status: number;
  stream: boolean;
  /** The fault applied to this request, if any. */
  fault?: Fault;
}

export type Fault =
  | { type: 'status'; status: number; body?: unknown; retryAfter?: string }
  | { type: 'reset' }
  | { type: 'hang' }
  | { type: 'stall'; afterChunks: number }
  | { type: 'break'; afterChunks: number }
  | { type: 'malformed' }
  | { type: 'oversized'; bytes: number }
  | { type: 'no-usage' };

export interface MockOptions {
  /** Delay before the response head, ms. */
  latencyMs?: number;
  /** Delay before each content chunk of a stream, ms. */
  chunkIntervalMs?: number;
  /** Content chunks per reply (3 words / 3 tokens each), default 4. */
  chunks?: number;
  /** When set, requests without this key get 401 in the kind's error shape. */
  apiKey?: string;
  /** OpenAI-style kinds: cached prompt tokens to report (a subset of prompt_tokens, clamped). */
  cachedTokens?: number;
  /** OpenAI-style kinds: cache-write prompt tokens to report (OpenRouter `prompt_tokens_details.cache_write_tokens`). */
  cacheWriteTokens?: number;
  /** OpenAI-style kinds: hidden reasoning tokens, added to completion_tokens and reported in completion_tokens_details. */
  reasoningTokens?: number;
  /** Anthropic: cache read / creation tokens, reported in addition to input_tokens. */
  anthropicCache?: { read?: number; write?: number };
}

export interface MockProvider {
  kind: MockKind;
  /** Base URL including /v1, e.g. http://127.0.0.1:PORT/v1 */
  url: string;
  port: number;
  calls: RecordedCall[];
  inFlight: number;
  maxInFlight: number;
  models: MockModel[];
  faults: Fault[];
  setDefaultFault(f: Fault | null): void;
  options: MockOptions;
  reset(): void;
  close(): Promise<void>;
}
