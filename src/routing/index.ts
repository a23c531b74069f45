import type { FastifyBaseLogger } from 'fastify';
import type { Redis } from 'ioredis';
import { newRedis } from '../lib/optional.js';
import type { Upstreams } from '../providers/upstream.js';
import { AttemptRunner } from './attempts.js';
import { Balancer } from './balancer.js';
import { type CircuitBreakers, type Clock, MemoryBreakers, RedisBreakers, systemClock } from './breaker.js';
import { MemoryResponseCache, RedisResponseCache, type ResponseCache } from './cache.js';
import type { CacheSettings } from './cache-serve.js';
import type { RoutingSettings } from './config.js';

export interface Routing {
  clock: Clock;
  breakers: CircuitBreakers;
  balancer: Balancer;
  attempts: AttemptRunner;
  cache: ResponseCache | null;
  cacheSettings: CacheSettings;
  settings: RoutingSettings;
  /** `memory` or `redis`: where breaker state and the response cache live. */
  store: 'memory' | 'redis';
  close(): Promise<void>;
}

/**
 * Builds the routing parts: breakers, balancer, attempt runner, response cache. With REDIS_URL the
 * breakers and the cache are shared by every instance (prefix ROUTING_REDIS_PREFIX, default REDIS_PREFIX + `rt:`).
 */
export function buildRouting(opts: {
  settings: RoutingSettings;
  upstreams: Upstreams;
  log: FastifyBaseLogger;
  redisUrl: string | null;
  clock?: Clock;
}): Routing {
  const { settings, log } = opts;
  const clock = opts.clock ?? systemClock;
  let redis: Redis | null = null;
  let breakers: CircuitBreakers;
  let cache: ResponseCache | null;
  const prefix = settings.redisPrefix;
  if (opts.redisUrl) {
    // While Redis is down a breaker check or cache lookup gives up quickly (the call is allowed, the
    // cache misses) instead of adding latency to every request.
    redis = newRedis(opts.redisUrl, {
      maxRetriesPerRequest: 1,
      commandTimeout: 500,
      // One write per turn of the event loop for every request's breaker and cache commands.
      enableAutoPipelining: true,
    });
    redis.on('error', (err) => log.warn({ err: err.message }, 'routing: Redis error'));
    breakers = new RedisBreakers(redis, prefix, settings.breaker, clock);
    cache = settings.cache.maxBytes > 0 ? new RedisResponseCache(redis, prefix) : null;
  } else {
    breakers = new MemoryBreakers(settings.breaker, clock);
    cache = settings.cache.maxBytes > 0 ? new MemoryResponseCache(settings.cache.maxBytes, clock) : null;
  }
  const balancer = new Balancer(settings.balancing, clock);
  const attempts = new AttemptRunner({ upstreams: opts.upstreams, breakers, balancer, settings, log });
  return {
    clock,
    breakers,
    balancer,
    attempts,
    cache,
    cacheSettings: {
      ttlMs: settings.cache.ttlMs,
      hitPriceRatio: settings.cache.hitPriceRatio,
      keyIds: settings.cache.keyIds,
    },
    settings,
    store: redis ? 'redis' : 'memory',
    async close() {
      await breakers.close();
      if (redis) await redis.quit().catch(() => redis?.disconnect());
    },
  };
}
