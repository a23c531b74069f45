import { ConfigError } from '../config/error.js';
import type { FileConfig } from '../config/file.js';

type Env = Record<string, string | undefined>;

export interface TimeoutSettings {
  connectMs: number;
  firstByteMs: number;
  idleMs: number;
  totalMs: number;
}

export interface BalanceSpec {
  /** `weighted` (default when weights are given) or `latency` (peak-EWMA). */
  strategy: 'weighted' | 'latency' | 'ordered';
  /** provider → relative weight (missing providers weigh 0 and serve only as fallbacks). */
  weights: Record<string, number>;
  /** Keep a user on one provider for this model (prompt caching); requests may also ask per call. */
  sticky: boolean;
}

export interface RoutingSettings {
  retry: { maxRetries: number; baseMs: number; maxDelayMs: number };
  timeouts: TimeoutSettings;
  /** provider → overrides of connect / first byte / idle. */
  providerTimeouts: Record<string, Partial<Omit<TimeoutSettings, 'totalMs'>>>;
  breaker: {
    failureThreshold: number;
    errorRate: number;
    minRequests: number;
    windowMs: number;
    cooldownMs: number;
  };
  /** model → models to try after it, in order. */
  fallbacks: Record<string, string[]>;
  /** model id (or `*`) → how to spread its traffic over the providers serving it. */
  balancing: Record<string, BalanceSpec>;
  cache: { ttlMs: number; maxBytes: number; hitPriceRatio: number; keyIds: string[] };
  /** Prefix of the Redis keys of breakers and the response cache (ROUTING_REDIS_PREFIX). */
  redisPrefix: string;
}

function int(env: Env, name: string, def: number, min = 0, max = Number.MAX_SAFE_INTEGER): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return def;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max)
    throw new ConfigError(`${name} must be an integer between ${min} and ${max}, got "${raw}"`);
  return n;
}

function ratio(env: Env, name: string, def: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return def;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < 0 || n > 1)
    throw new ConfigError(`${name} must be a number between 0 and 1, got "${raw}"`);
  return n;
}

const positive = (v: unknown, where: string): number | undefined => {
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1)
    throw new ConfigError(`GATEWAYZ_CONFIG: ${where} must be a positive integer (ms)`);
  return v;
};

/** Routing settings: env variables for the knobs, the config file for structure (chains, weights, per-provider timeouts). */
export function loadRoutingSettings(env: Env, file: FileConfig, timeouts: TimeoutSettings): RoutingSettings {
  const providerTimeouts: RoutingSettings['providerTimeouts'] = {};
  for (const [p, t] of Object.entries(file.providerTimeouts ?? {})) {
    if (!t || typeof t !== 'object')
      throw new ConfigError(`GATEWAYZ_CONFIG: providerTimeouts.${p} must be an object`);
    providerTimeouts[p.toLowerCase()] = {
      connectMs: positive(t.connectMs, `providerTimeouts.${p}.connectMs`),
      firstByteMs: positive(t.firstByteMs, `providerTimeouts.${p}.firstByteMs`),
      idleMs: positive(t.idleMs, `providerTimeouts.${p}.idleMs`),
    };
  }
  const fallbacks: Record<string, string[]> = {};
  for (const [m, list] of Object.entries(file.fallbacks ?? {})) {
    if (!Array.isArray(list) || list.some((x) => typeof x !== 'string'))
      throw new ConfigError(`GATEWAYZ_CONFIG: fallbacks.${m} must be an array of model ids`);
    fallbacks[m] = list;
  }
  const balancing: Record<string, BalanceSpec> = {};
  for (const [m, spec] of Object.entries(file.balancing ?? {})) {
    const weights: Record<string, number> = {};
    for (const [p, w] of Object.entries(spec?.weights ?? {})) {
      if (typeof w !== 'number' || !(w >= 0))
        throw new ConfigError(`GATEWAYZ_CONFIG: balancing.${m}.weights.${p} must be a number ≥ 0`);
      weights[p.toLowerCase()] = w;
    }
    const strategy = spec?.strategy ?? (Object.keys(weights).length ? 'weighted' : 'ordered');
    if (!['weighted', 'latency', 'ordered'].includes(strategy))
      throw new ConfigError(`GATEWAYZ_CONFIG: balancing.${m}.strategy must be weighted, latency or ordered`);
    balancing[m] = { strategy, weights, sticky: spec?.sticky === true };
  }
  return {
    retry: {
      maxRetries: int(env, 'UPSTREAM_MAX_RETRIES', 2, 0, 10),
      baseMs: int(env, 'UPSTREAM_RETRY_BASE_MS', 200, 1),
      maxDelayMs: int(env, 'UPSTREAM_RETRY_MAX_DELAY_MS', 5_000, 1),
    },
    timeouts,
    providerTimeouts,
    breaker: {
      failureThreshold: int(env, 'BREAKER_FAILURE_THRESHOLD', 5, 1),
      errorRate: ratio(env, 'BREAKER_ERROR_RATE', 0.5),
      minRequests: int(env, 'BREAKER_MIN_REQUESTS', 20, 1),
      windowMs: int(env, 'BREAKER_WINDOW_MS', 60_000, 1),
      cooldownMs: int(env, 'BREAKER_COOLDOWN_MS', 30_000, 1),
    },
    fallbacks,
    balancing,
    cache: {
      ttlMs: int(env, 'RESPONSE_CACHE_TTL_MS', 3_600_000, 1),
      maxBytes: int(env, 'RESPONSE_CACHE_MAX_BYTES', 64 * 1024 * 1024, 0),
      hitPriceRatio: ratio(env, 'CACHE_HIT_PRICE_RATIO', 0),
      keyIds: Array.isArray(file.cacheKeys) ? file.cacheKeys.map(String) : [],
    },
    redisPrefix: env.ROUTING_REDIS_PREFIX || `${env.REDIS_PREFIX || 'gatewayz:'}rt:`,
  };
}
