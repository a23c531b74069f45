import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { Usage } from '../billing/cost.js';
import { type Clock, systemClock } from './breaker.js';

/** A served response, kept to be replayed: the JSON body or the SSE events the client received. */
export interface CachedResponse {
  kind: 'json' | 'sse';
  body: string;
  usage: Usage;
  provider: string;
  model: string;
  createdAt: number;
}

export interface ResponseCache {
  get(key: string): Promise<CachedResponse | null>;
  set(key: string, value: CachedResponse, ttlMs: number): Promise<void>;
}

/** Largest single entry; bigger responses are simply not cached. */
export const MAX_ENTRY_BYTES = 4 * 1024 * 1024;

/** Fields that steer the gateway only; they do not change the answer. */
const IGNORED = new Set(['cache']);

/** JSON with sorted object keys, so key order in the request does not matter. */
function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (v && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    return `{${Object.keys(o)
      .filter((k) => o[k] !== undefined)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical(o[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v ?? null);
}

/**
 * The cache key of a request, or null when its answer is not deterministic enough to reuse:
 * only `temperature: 0` or seeded requests are cached. Keys are per user (answers never cross accounts).
 */
export function responseCacheKey(
  userId: string,
  endpoint: string,
  body: Record<string, unknown>,
): string | null {
  const deterministic =
    body.temperature === 0 || (typeof body.seed === 'number' && Number.isInteger(body.seed));
  if (!deterministic) return null;
  const normalized: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(body)) if (!IGNORED.has(k)) normalized[k] = v;
  const h = createHash('sha256')
    .update(`${userId}\u0000${endpoint}\u0000${canonical(normalized)}`)
    .digest('hex');
  return h;
}

const sizeOf = (v: CachedResponse) => v.body.length * 2 + 256;

/** In-process LRU bounded by (approximate) bytes. */
export class MemoryResponseCache implements ResponseCache {
  private readonly map = new Map<string, { v: CachedResponse; expiresAt: number; size: number }>();
  private bytes = 0;

  constructor(
    private readonly maxBytes: number,
    private readonly clock: Clock = systemClock,
  ) {}

  async get(key: string): Promise<CachedResponse | null> {
    const e = this.map.get(key);
    if (!e) return null;
    this.map.delete(key);
    if (e.expiresAt <= this.clock.now()) {
      this.bytes -= e.size;
      return null;
    }
    this.map.set(key, e); // most recently used goes last
    return e.v;
  }

  async set(key: string, v: CachedResponse, ttlMs: number): Promise<void> {
    const size = sizeOf(v);
    if (size > this.maxBytes) return;
    const old = this.map.get(key);
    if (old) {
      this.map.delete(key);
      this.bytes -= old.size;
    }
    this.map.set(key, { v, expiresAt: this.clock.now() + ttlMs, size });
    this.bytes += size;
    for (const [k, e] of this.map) {
      if (this.bytes <= this.maxBytes) break;
      this.map.delete(k);
      this.bytes -= e.size;
    }
  }

  get sizeBytes(): number {
    return this.bytes;
  }

  get entries(): number {
    return this.map.size;
  }
}

/** Shared by every instance; Redis' own TTL expires entries (configure maxmemory-policy for the size bound). */
export class RedisResponseCache implements ResponseCache {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {}

  async get(key: string): Promise<CachedResponse | null> {
    const raw = await this.redis.get(`${this.prefix}cache:${key}`);
    if (!raw) return null;
    try {
      return JSON.parse(raw) as CachedResponse;
    } catch {
      return null;
    }
  }

  async set(key: string, v: CachedResponse, ttlMs: number): Promise<void> {
    await this.redis.set(`${this.prefix}cache:${key}`, JSON.stringify(v), 'PX', ttlMs);
  }
}
