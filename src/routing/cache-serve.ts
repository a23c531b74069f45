import type { FastifyReply } from 'fastify';
import { costOf, type Price, type Usage } from '../billing/cost.js';
import type { Adapter, InferenceCall, SettleResult } from '../inference/pipeline.js';
import { spliceField } from '../inference/respond-json.js';
import { writeSseHead } from '../inference/stream-io.js';
import { type CachedResponse, MAX_ENTRY_BYTES, type ResponseCache } from './cache.js';
import { cacheAsked } from './request-options.js';
import type { Target } from './router.js';

export interface CacheSettings {
  ttlMs: number;
  /** Share of the original cost a hit is billed at (0 = free). */
  hitPriceRatio: number;
  /** API key ids whose cacheable requests are always cached. */
  keyIds: string[];
}

/** The response cache as one request uses it. */
export interface CacheUse {
  lookup(): Promise<CachedResponse | null>;
  store(kind: 'json' | 'sse', body: string, usage: Usage, t: Target): void;
}

/**
 * Whether this request uses the cache: asked for by the body (`cache: true`), the header
 * (`x-gatewayz-cache: true`) or the key's setting, and deterministic (temperature 0 or a seed).
 * Called after guards and the hold: a cache hit is never a way around limits or billing.
 */
export function openCacheUse(
  call: InferenceCall,
  adapter: Adapter,
  cache: ResponseCache | null | undefined,
  settings: CacheSettings | undefined,
): CacheUse | null {
  const userId = call.principal.userId;
  if (!cache || !settings || !adapter.cache || !userId) return null;
  const keyId = call.principal.keyId;
  const asked =
    adapter.cache.requested ||
    cacheAsked(call.headers) ||
    (keyId !== null && settings.keyIds.includes(keyId));
  if (!asked) return null;
  const key = adapter.cache.key(userId);
  if (!key) {
    call.responseHeaders['x-gatewayz-cache'] = 'bypass';
    return null;
  }
  return {
    async lookup() {
      let hit: CachedResponse | null = null;
      try {
        hit = await cache.get(key);
      } catch {
        hit = null; // a cache outage is a miss, never an error
      }
      call.responseHeaders['x-gatewayz-cache'] = hit ? 'hit' : 'miss';
      return hit;
    },
    store(kind, body, usage, t) {
      if (body.length > MAX_ENTRY_BYTES) return;
      const entry: CachedResponse = {
        kind,
        body,
        usage,
        provider: t.provider.def.name,
        model: t.entry.id,
        createdAt: Date.now(),
      };
      cache.set(key, entry, settings.ttlMs).catch(() => {});
    },
  };
}

/** Answer from the cache: bill the hit (status `cache_hit`), then replay the body — a stream as a stream. */
export async function serveCached(
  hit: CachedResponse,
  reply: FastifyReply,
  o: {
    ratio: number;
    price: Price;
    settle(usage: Usage, costMicros: number): Promise<SettleResult>;
    headers(): Record<string, string>;
    gatewayUsage(s: SettleResult): Record<string, unknown>;
  },
): Promise<void> {
  const cost = o.ratio === 0 ? 0 : Math.ceil(costOf(hit.usage, o.price) * o.ratio);
  const settled = await o.settle(hit.usage, cost);
  const headers = { ...o.headers(), 'x-gatewayz-cache': 'hit' };
  if (hit.kind === 'sse') {
    reply.hijack();
    writeSseHead(reply.raw, headers);
    reply.raw.end(`${hit.body}data: [DONE]\n\n`);
    return;
  }
  const body = spliceField(hit.body, 'gateway_usage', { ...o.gatewayUsage(settled), cache: 'hit' });
  reply.code(200).headers(headers).type('application/json; charset=utf-8').send(body);
}
