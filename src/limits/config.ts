import { ConfigError } from '../config/error.js';

type Env = Record<string, string | undefined>;

/** One value per limited window; null means unlimited. */
export interface LimitValues {
  requestsPerMinute: number | null;
  requestsPerHour: number | null;
  requestsPerDay: number | null;
  requestsPerMonth: number | null;
  tokensPerMinute: number | null;
  tokensPerHour: number | null;
  tokensPerDay: number | null;
  tokensPerMonth: number | null;
  concurrency: number | null;
}

export interface LimitsConfig {
  /** RATE_LIMITS_ENABLED: false turns every per-user/per-key check off (bench comparison). */
  enabled: boolean;
  /** RATE_LIMIT_FAILURE: what a check does when Redis is unreachable. */
  failure: 'open' | 'closed';
  /** Prefix of the limiter's Redis keys and channel: REDIS_PREFIX (shared with the fleet) + `rl:`. */
  redisPrefix: string;
  /** DEFAULT_*: limits of a user without a plan. */
  defaults: LimitValues;
  /** RATE_LIMIT_OUTPUT_TOKENS_BOUND: output tokens reserved per choice when a request sets no max_tokens. */
  outputTokensBound: number;
  /** RATE_LIMIT_CACHE_TTL_MS: longest time resolved limits are cached without an invalidation. */
  cacheTtlMs: number;
  /** PROVIDER_MAX_CONCURRENCY: requests in flight per provider, across all instances (`*` = every provider). */
  providerConcurrency: Record<string, number>;
  /** PROVIDER_QUEUE_TIMEOUT_MS: how long an attempt waits for a provider slot before 503 provider_busy. */
  providerWaitMs: number;
  /** RATE_LIMIT_CONCURRENCY_WAIT_MS: how long a request at the concurrency limit waits for a slot before 429. */
  concurrencyWaitMs: number;
}

function limit(env: Env, name: string): number | null {
  const raw = env[name];
  if (raw === undefined || raw === '' || raw === 'unlimited') return null;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0)
    throw new ConfigError(`${name} must be a non-negative integer, got "${raw}"`);
  return n;
}

/** `8` (every provider) or `openrouter=8,featherless=2` (with an optional `*=N` default). */
export function parseProviderConcurrency(raw: string | undefined): Record<string, number> {
  const out: Record<string, number> = {};
  if (!raw?.trim()) return out;
  for (const part of raw.split(',')) {
    const p = part.trim();
    if (!p) continue;
    const eq = p.indexOf('=');
    const name = eq < 0 ? '*' : p.slice(0, eq).trim().toLowerCase();
    const value = Number(eq < 0 ? p : p.slice(eq + 1).trim());
    if (!name || !Number.isInteger(value) || value < 1)
      throw new ConfigError(`PROVIDER_MAX_CONCURRENCY must be N or provider=N,… with N >= 1, got "${raw}"`);
    out[name] = value;
  }
  return out;
}

export function loadLimitsConfig(env: Env): LimitsConfig {
  const enabledRaw = (env.RATE_LIMITS_ENABLED ?? 'true').toLowerCase();
  if (!['true', 'false', '1', '0', ''].includes(enabledRaw))
    throw new ConfigError(`RATE_LIMITS_ENABLED must be true or false, got "${env.RATE_LIMITS_ENABLED}"`);
  const failure = (env.RATE_LIMIT_FAILURE || 'closed').toLowerCase();
  if (failure !== 'open' && failure !== 'closed')
    throw new ConfigError(`RATE_LIMIT_FAILURE must be open or closed, got "${env.RATE_LIMIT_FAILURE}"`);
  const bound = limit(env, 'RATE_LIMIT_OUTPUT_TOKENS_BOUND') ?? 4096;
  const ttl = limit(env, 'RATE_LIMIT_CACHE_TTL_MS') ?? 30_000;
  return {
    enabled: enabledRaw !== 'false' && enabledRaw !== '0',
    failure,
    redisPrefix: `${env.REDIS_PREFIX || 'gatewayz:'}rl:`,
    defaults: {
      requestsPerMinute: limit(env, 'DEFAULT_REQUESTS_PER_MINUTE'),
      requestsPerHour: limit(env, 'DEFAULT_REQUESTS_PER_HOUR'),
      requestsPerDay: limit(env, 'DEFAULT_REQUESTS_PER_DAY'),
      requestsPerMonth: limit(env, 'DEFAULT_REQUESTS_PER_MONTH'),
      tokensPerMinute: limit(env, 'DEFAULT_TOKENS_PER_MINUTE'),
      tokensPerHour: limit(env, 'DEFAULT_TOKENS_PER_HOUR'),
      tokensPerDay: limit(env, 'DEFAULT_TOKENS_PER_DAY'),
      tokensPerMonth: limit(env, 'DEFAULT_TOKENS_PER_MONTH'),
      concurrency: limit(env, 'DEFAULT_MAX_CONCURRENT'),
    },
    outputTokensBound: Math.max(1, bound),
    cacheTtlMs: ttl,
    providerConcurrency: parseProviderConcurrency(env.PROVIDER_MAX_CONCURRENCY),
    providerWaitMs: limit(env, 'PROVIDER_QUEUE_TIMEOUT_MS') ?? 10_000,
    concurrencyWaitMs: limit(env, 'RATE_LIMIT_CONCURRENCY_WAIT_MS') ?? 500,
  };
}
