import type { Redis } from 'ioredis';

/** Time source, injectable so tests can move time without sleeping. */
export interface Clock {
  now(): number;
}
export const systemClock: Clock = { now: () => Date.now() };

export type BreakerState = 'closed' | 'open' | 'half_open';

export interface BreakerSettings {
  /** Consecutive failures that open the breaker. */
  failureThreshold: number;
  /** Failure share over the window that opens it (with at least minRequests in the window). */
  errorRate: number;
  minRequests: number;
  windowMs: number;
  /** How long an open breaker sheds traffic before letting one probe through. */
  cooldownMs: number;
}

export interface BreakerView {
  key: string;
  state: BreakerState;
  consecutive_failures: number;
  opened_at: number | null;
  retry_at: number | null;
}

/**
 * Circuit breakers keyed by `provider` and `provider|model`. `acquire` says whether a call may go:
 * closed → yes; open → no until the cool-down ends; then exactly one caller gets the half-open probe.
 */
export interface CircuitBreakers {
  acquire(key: string): Promise<boolean>;
  /**
   * `acquire` when it can answer without waiting, else undefined (then call `acquire`). Answering
   * undefined must leave the breaker as it was. Memory: always; Redis: a key seen closed a moment ago.
   */
  acquireNow?(key: string): boolean | undefined;
  success(key: string): Promise<void>;
  /** `success` when it needs no round trip (true), else false (then call `success`). */
  successNow?(key: string): boolean;
  failure(key: string): Promise<void>;
  view(keys?: string[]): Promise<BreakerView[]>;
  close(): Promise<void>;
}

const keysOf = new Map<string, Map<string, readonly [string, string]>>();

/** The breaker keys of a target, made once per provider and model (shared: never mutate). */
export function breakerKeys(provider: string, model: string): readonly [string, string] {
  let byModel = keysOf.get(provider);
  if (!byModel) {
    byModel = new Map();
    keysOf.set(provider, byModel);
  }
  let k = byModel.get(model);
  if (!k) {
    k = [provider, `${provider}|${model}`];
    // Bounded: models come from the catalog (a request for an unknown model never gets this far).
    if (byModel.size > 100_000) byModel.clear();
    byModel.set(model, k);
  }
  return k;
}

interface Slot {
  consecutive: number;
  windowStart: number;
  total: number;
  failed: number;
  openedAt: number | null;
  retryAt: number | null;
  /** Half-open probe under way until this time (a probe that never reports back frees the slot). */
  probeUntil: number;
}

/** One process's breakers (the embedded default). */
export class MemoryBreakers implements CircuitBreakers {
  private readonly slots = new Map<string, Slot>();

  constructor(
    private readonly s: BreakerSettings,
    private readonly clock: Clock = systemClock,
  ) {}

  private slot(key: string): Slot {
    let x = this.slots.get(key);
    if (!x) {
      x = {
        consecutive: 0,
        windowStart: this.clock.now(),
        total: 0,
        failed: 0,
        openedAt: null,
        retryAt: null,
        probeUntil: 0,
      };
      this.slots.set(key, x);
    }
    return x;
  }

  private state(x: Slot): BreakerState {
    if (x.retryAt === null) return 'closed';
    return this.clock.now() < x.retryAt ? 'open' : 'half_open';
  }

  async acquire(key: string): Promise<boolean> {
    return this.acquireNow(key);
  }

  acquireNow(key: string): boolean {
    const x = this.slots.get(key);
    if (!x) return true;
    const st = this.state(x);
    if (st === 'closed') return true;
    const now = this.clock.now();
    if (st === 'open' || x.probeUntil > now) return false;
    x.probeUntil = now + this.s.cooldownMs;
    return true;
  }

  private count(x: Slot, failed: boolean): void {
    const now = this.clock.now();
    if (now - x.windowStart >= this.s.windowMs) {
      x.windowStart = now;
      x.total = 0;
      x.failed = 0;
    }
    x.total++;
    if (failed) x.failed++;
  }

  async success(key: string): Promise<void> {
    this.successNow(key);
  }

  successNow(key: string): boolean {
    const x = this.slot(key);
    this.count(x, false);
    x.consecutive = 0;
    if (x.retryAt !== null) {
      // the probe (or a call that was already under way) succeeded: close and start afresh
      x.retryAt = null;
      x.openedAt = null;
      x.total = 0;
      x.failed = 0;
    }
    x.probeUntil = 0;
    return true;
  }

  async failure(key: string): Promise<void> {
    const x = this.slot(key);
    this.count(x, true);
    x.consecutive++;
    const now = this.clock.now();
    const trips =
      x.retryAt !== null ||
      x.consecutive >= this.s.failureThreshold ||
      (x.total >= this.s.minRequests && x.failed / x.total >= this.s.errorRate);
    if (trips) {
      x.openedAt = x.openedAt ?? now;
      x.retryAt = now + this.s.cooldownMs;
    }
    x.probeUntil = 0;
  }

  async view(keys?: string[]): Promise<BreakerView[]> {
    const out: BreakerView[] = [];
    for (const [key, x] of this.slots) {
      if (keys && !keys.includes(key)) continue;
      out.push({
        key,
        state: this.state(x),
        consecutive_failures: x.consecutive,
        opened_at: x.openedAt,
        retry_at: x.retryAt,
      });
    }
    return out;
  }

  async close(): Promise<void> {}
}

// KEYS[1] = hash; ARGV: now, windowMs, threshold, minRequests, errorRate, cooldownMs, ttlMs
const FAILURE_LUA = `
local h = KEYS[1]
local now = tonumber(ARGV[1])
local ws = tonumber(redis.call('HGET', h, 'ws') or '0')
if now - ws >= tonumber(ARGV[2]) then
  redis.call('HSET', h, 'ws', now, 'total', 0, 'failed', 0)
end
local total = redis.call('HINCRBY', h, 'total', 1)
local failed = redis.call('HINCRBY', h, 'failed', 1)
local consecutive = redis.call('HINCRBY', h, 'consecutive', 1)
local retry = redis.call('HGET', h, 'retry')
if retry or consecutive >= tonumber(ARGV[3]) or (total >= tonumber(ARGV[4]) and failed / total >= tonumber(ARGV[5])) then
  if not redis.call('HGET', h, 'opened') then redis.call('HSET', h, 'opened', now) end
  redis.call('HSET', h, 'retry', now + tonumber(ARGV[6]))
end
redis.call('HDEL', h, 'probe')
redis.call('PEXPIRE', h, tonumber(ARGV[7]))
return consecutive
`;

// KEYS[1] = hash; ARGV: now, windowMs, ttlMs, count, batched (1: a batch of calls made while the
// breaker was closed, which never closes a breaker that has opened since)
const SUCCESS_LUA = `
local h = KEYS[1]
local now = tonumber(ARGV[1])
if redis.call('HGET', h, 'retry') then
  if ARGV[5] == '1' then return 0 end
  redis.call('DEL', h)
  redis.call('HSET', h, 'ws', now, 'total', tonumber(ARGV[4]), 'failed', 0, 'consecutive', 0)
else
  local ws = tonumber(redis.call('HGET', h, 'ws') or '0')
  if now - ws >= tonumber(ARGV[2]) then redis.call('HSET', h, 'ws', now, 'total', 0, 'failed', 0) end
  redis.call('HINCRBY', h, 'total', tonumber(ARGV[4]))
  redis.call('HSET', h, 'consecutive', 0)
end
redis.call('PEXPIRE', h, tonumber(ARGV[3]))
return 1
`;

// KEYS[1] = hash; ARGV: now, probeTtlMs → 2 closed, 1 the half-open probe, 0 shed
const ACQUIRE_LUA = `
local h = KEYS[1]
local retry = redis.call('HGET', h, 'retry')
if not retry then return 2 end
local now = tonumber(ARGV[1])
if now < tonumber(retry) then return 0 end
local probe = redis.call('HGET', h, 'probe')
if probe and tonumber(probe) > now then return 0 end
redis.call('HSET', h, 'probe', now + tonumber(ARGV[2]))
return 1
`;

type BreakerRedis = Redis & {
  gwzBreakerAcquire(key: string, now: number, probeTtlMs: number): Promise<number>;
  gwzBreakerSuccess(
    key: string,
    now: number,
    windowMs: number,
    ttlMs: number,
    count: number,
    batched: 0 | 1,
  ): Promise<number>;
  gwzBreakerFailure(key: string, ...args: number[]): Promise<number>;
};

/**
 * Breakers shared by every gateway instance through Redis (one hash per key, updated atomically by
 * Lua, sent as EVALSHA). Times come from the injected clock so all instances agree as long as their
 * clocks do.
 *
 * The common case costs no round trip: a key seen closed is taken as closed for `closedCacheMs`
 * (a breaker another instance opens sheds traffic here within that time), and the successes of calls
 * made while it was closed are counted here and sent as one increment per key every `closedCacheMs`
 * (before any failure of the same key, so the consecutive-failure count stays in order). A failure,
 * an open or half-open breaker and a probe's success go to Redis at once.
 */
export class RedisBreakers implements CircuitBreakers {
  private readonly redis: BreakerRedis;
  /** Keys seen closed, and when (clock time). */
  private readonly closedAt = new Map<string, number>();
  private readonly pending = new Map<string, number>();
  private flushTimer: NodeJS.Timeout | null = null;

  constructor(
    redis: Redis,
    private readonly prefix: string,
    private readonly s: BreakerSettings,
    private readonly clock: Clock = systemClock,
    /** A probe that never reports back (process died) frees the half-open slot after this. */
    private readonly probeTtlMs = 60_000,
    private readonly closedCacheMs = 250,
  ) {
    redis.defineCommand('gwzBreakerAcquire', { numberOfKeys: 1, lua: ACQUIRE_LUA });
    redis.defineCommand('gwzBreakerSuccess', { numberOfKeys: 1, lua: SUCCESS_LUA });
    redis.defineCommand('gwzBreakerFailure', { numberOfKeys: 1, lua: FAILURE_LUA });
    this.redis = redis as BreakerRedis;
  }

  private k(key: string): string {
    return `${this.prefix}breaker:${key}`;
  }

  private get ttl(): number {
    return Math.max(this.s.windowMs, this.s.cooldownMs) * 4;
  }

  private seenClosed(key: string, now: number): boolean {
    const at = this.closedAt.get(key);
    return at !== undefined && now - at < this.closedCacheMs;
  }

  acquireNow(key: string): boolean | undefined {
    return this.seenClosed(key, this.clock.now()) ? true : undefined;
  }

  async acquire(key: string): Promise<boolean> {
    const now = this.clock.now();
    if (this.seenClosed(key, now)) return true;
    // 2: closed (cached a moment); 1: this caller is the half-open probe; 0: shed.
    const r = Number(await this.redis.gwzBreakerAcquire(this.k(key), now, this.probeTtlMs));
    if (r === 2) {
      if (this.closedAt.size > 10_000) this.closedAt.clear();
      this.closedAt.set(key, now);
    }
    return r >= 1;
  }

  async success(key: string): Promise<void> {
    if (this.successNow(key)) return;
    await this.redis.gwzBreakerSuccess(this.k(key), this.clock.now(), this.s.windowMs, this.ttl, 1, 0);
  }

  /** A key seen closed a moment ago: counted locally, sent with the next flush. */
  successNow(key: string): boolean {
    if (!this.seenClosed(key, this.clock.now())) return false;
    this.pending.set(key, (this.pending.get(key) ?? 0) + 1);
    if (!this.flushTimer) {
      this.flushTimer = setTimeout(() => void this.flush().catch(() => {}), this.closedCacheMs);
      this.flushTimer.unref();
    }
    return true;
  }

  async failure(key: string): Promise<void> {
    this.closedAt.delete(key);
    await this.flushKey(key);
    const s = this.s;
    await this.redis.gwzBreakerFailure(
      this.k(key),
      this.clock.now(),
      s.windowMs,
      s.failureThreshold,
      s.minRequests,
      s.errorRate,
      s.cooldownMs,
      this.ttl,
    );
  }

  /** Send the successes counted here (one increment per key). */
  async flush(): Promise<void> {
    if (this.flushTimer) clearTimeout(this.flushTimer);
    this.flushTimer = null;
    await Promise.all([...this.pending.keys()].map((key) => this.flushKey(key)));
  }

  private async flushKey(key: string): Promise<void> {
    const n = this.pending.get(key);
    if (!n) return;
    this.pending.delete(key);
    await this.redis.gwzBreakerSuccess(this.k(key), this.clock.now(), this.s.windowMs, this.ttl, n, 1);
  }

  async view(keys?: string[]): Promise<BreakerView[]> {
    let list = keys;
    if (!list) {
      list = [];
      let cursor = '0';
      do {
        const [next, found] = await this.redis.scan(cursor, 'MATCH', `${this.prefix}breaker:*`, 'COUNT', 200);
        cursor = next;
        for (const f of found) list.push(f.slice(`${this.prefix}breaker:`.length));
      } while (cursor !== '0' && list.length < 5000);
    }
    const now = this.clock.now();
    const out: BreakerView[] = [];
    for (const key of list) {
      const h = await this.redis.hgetall(this.k(key));
      if (!h || Object.keys(h).length === 0) continue;
      const retry = h.retry ? Number(h.retry) : null;
      out.push({
        key,
        state: retry === null ? 'closed' : now < retry ? 'open' : 'half_open',
        consecutive_failures: Number(h.consecutive ?? 0),
        opened_at: h.opened ? Number(h.opened) : null,
        retry_at: retry,
      });
    }
    return out;
  }

  async close(): Promise<void> {
    await this.flush().catch(() => {});
  }
}
