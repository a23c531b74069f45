import type { FastifyBaseLogger } from 'fastify';
import type { Redis } from 'ioredis';
import type { Kysely } from 'kysely';
import type { Database } from '../db/schema.js';
import { newRedis } from '../lib/optional.js';
import { type Bus, endRedis, LocalBus, RedisBus } from './bus.js';
import type { FleetConfig } from './config.js';
import { Jobs } from './jobs.js';
import { DatabaseLeases, FallbackLeases, type LeaseProvider, RedisLeases } from './lock.js';

/** Channels on the bus. */
export const CHANNELS = {
  /** A key's settings changed (revoked, rotated, limits): message = key id. */
  key: 'inv:key',
  /** A user's role/status changed: message = user id. */
  user: 'inv:user',
  /** The catalog was re-synced by the instance running the sync job. */
  catalog: 'inv:catalog',
} as const;

export interface Fleet {
  config: FleetConfig;
  bus: Bus;
  leases: LeaseProvider;
  jobs: Jobs;
  /** The command connection when REDIS_URL is set (shared by fleet helpers). */
  redis: Redis | null;
  close(): Promise<void>;
}

/**
 * What lets N instances share one deployment: a bus for invalidation (Redis pub/sub, or in-process),
 * leases so each scheduled job has one runner (Redis, or a database row).
 */
export async function createFleet(
  config: FleetConfig,
  redisUrl: string | null,
  db: Kysely<Database>,
  log: FastifyBaseLogger,
): Promise<Fleet> {
  const onError = (e: unknown) => log.warn({ err: e }, 'fleet: redis error');
  let bus: Bus;
  let redis: Redis | null = null;
  let leases: LeaseProvider;
  if (redisUrl) {
    // Fail fast while Redis is down (the leases fall back to the database).
    redis = newRedis(redisUrl, { maxRetriesPerRequest: 1, enableOfflineQueue: false });
    redis.on('error', onError);
    const rb = new RedisBus(redisUrl, config.redisPrefix, config.instanceId, onError);
    bus = rb;
    // Start on Redis when it is there; a Redis that is down does not stop the start (fallbacks apply).
    const r = redis;
    const up = Promise.all([
      rb.ready(),
      r.status === 'ready' ? Promise.resolve() : new Promise<void>((res) => r.once('ready', () => res())),
    ]);
    const timeout = new Promise<'timeout'>((res) => setTimeout(() => res('timeout'), 5000).unref());
    if ((await Promise.race([up, timeout])) === 'timeout') log.warn('fleet: Redis not reachable at start');
    leases = new FallbackLeases(
      new RedisLeases(redis, config.redisPrefix, config.instanceId),
      new DatabaseLeases(db, config.instanceId),
      (err) => log.warn({ err }, 'fleet: Redis unreachable, scheduled jobs use database leases'),
    );
  } else {
    bus = new LocalBus(onError);
    leases = new DatabaseLeases(db, config.instanceId);
  }
  const jobs = new Jobs(leases, (job, err) => log.warn({ err, job }, 'scheduled job failed'));
  return {
    config,
    bus,
    leases,
    jobs,
    redis,
    async close() {
      await jobs.stop();
      await bus.close();
      if (redis) await endRedis(redis);
    },
  };
}
