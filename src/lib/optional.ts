import { createRequire } from 'node:module';
import type { Redis, RedisOptions } from 'ioredis';

const require = createRequire(import.meta.url);

/**
 * Load a dependency only when a feature that needs it is configured (Redis, PostgreSQL, Stripe,
 * SMTP, Resend): the embedded default never pays their start-up time and memory.
 */
export function loadOptional<T>(name: string): T {
  return require(name) as T;
}

export function newRedis(url: string, options: RedisOptions = {}): Redis {
  const { Redis: RedisClient } = loadOptional<typeof import('ioredis')>('ioredis');
  return new RedisClient(url, options);
}
