import type { FastifyBaseLogger } from 'fastify';
import type { Kysely } from 'kysely';
import type { Database } from '../db/schema.js';
import { type LimiterBackend, MemoryBackend } from './backend.js';
import type { LimitsConfig } from './config.js';
import { ProviderGate } from './provider-gate.js';
import { RedisBackend } from './redis-backend.js';
import { LimitsService } from './service.js';
import { LimitsStore } from './store.js';

export interface Limits {
  service: LimitsService;
  store: LimitsStore;
  gate: ProviderGate | null;
  close(): Promise<void>;
}

/** Builds the limiter: in-process counters, or Redis when REDIS_URL is set. */
export async function createLimits(opts: {
  config: LimitsConfig;
  redisUrl: string | null;
  db: Kysely<Database>;
  log: FastifyBaseLogger;
  leaseTtlMs: number;
}): Promise<Limits> {
  const store = new LimitsStore(opts.db);
  let service: LimitsService | null = null;
  const onError = (e: unknown) => service?.backendFailed(e);
  let backend: LimiterBackend;
  if (opts.redisUrl) {
    const rb = new RedisBackend(opts.redisUrl, onError);
    rb.client.on('ready', () => service?.backendOk());
    await rb.ready().catch((e) => opts.log.warn({ err: e }, 'limits: Redis not reachable at start'));
    backend = rb;
  } else {
    backend = new MemoryBackend();
  }
  service = new LimitsService({
    config: opts.config,
    store,
    backend,
    log: opts.log,
    leaseTtlMs: opts.leaseTtlMs,
    redisUrl: opts.redisUrl,
  });
  if (backend.kind === 'redis' && (backend as RedisBackend).client.status !== 'ready')
    service.backendFailed(new Error('Redis not reachable'));
  await service.start();
  const gate = Object.keys(opts.config.providerConcurrency).length
    ? new ProviderGate(
        opts.config.providerConcurrency,
        backend,
        opts.config.redisPrefix,
        opts.leaseTtlMs,
        onError,
      )
    : null;
  const s = service;
  return { service: s, store, gate, close: () => s.close() };
}
