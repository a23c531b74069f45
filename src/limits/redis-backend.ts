import type { Redis } from 'ioredis';
import { newRedis } from '../lib/optional.js';
import type { Adjustment, CheckInput, CheckResult, LimiterBackend } from './backend.js';

/**
 * One round trip per request: every counter (hash of bucket → units) and every concurrency lease
 * set (sorted set of lease id → expiry) of the request is read, checked and — only when all pass —
 * incremented inside one script, so instances sharing Redis see one exact count.
 * The time comes from the caller (injectable clock; instances keep their clocks NTP-synced).
 */
const CHECK = `
local now = tonumber(ARGV[1])
local nc = tonumber(ARGV[2])
local nl = tonumber(ARGV[3])
local dry = ARGV[4] == '1'
local denied = -1
local retry = 0
local used = {}
local reset = {}
local inflight = {}
local curs = {}
local a = 5
for i = 1, nc do
  local cur = tonumber(ARGV[a]); local start = tonumber(ARGV[a + 1]); local amount = tonumber(ARGV[a + 2])
  local limit = tonumber(ARGV[a + 3]); local bucketMs = tonumber(ARGV[a + 5]); local periodEnd = tonumber(ARGV[a + 6])
  curs[i] = cur
  local h = redis.call('HGETALL', KEYS[i])
  local sum = 0
  local live = {}
  local newest = -1
  for j = 1, #h, 2 do
    local b = tonumber(h[j]); local c = tonumber(h[j + 1])
    if b < start then
      redis.call('HDEL', KEYS[i], h[j])
    else
      sum = sum + c
      live[#live + 1] = { b, c }
      if c > 0 and b > newest then newest = b end
    end
  end
  used[i] = sum
  if bucketMs == 0 then
    reset[i] = math.max(0, periodEnd - now)
  elseif newest < 0 then
    reset[i] = 0
  else
    reset[i] = math.max(0, (newest + cur - start + 1) * bucketMs - now)
  end
  if denied < 0 and sum + amount > limit then
    denied = i - 1
    if amount > limit then
      retry = -1
    elseif bucketMs == 0 then
      retry = math.max(0, periodEnd - now)
    else
      table.sort(live, function(x, y) return x[1] < y[1] end)
      local need = sum + amount - limit
      local freed = 0
      retry = (cur + cur - start + 1) * bucketMs - now
      for _, e in ipairs(live) do
        freed = freed + e[2]
        if freed >= need then retry = math.max(0, (e[1] + cur - start + 1) * bucketMs - now); break end
      end
    end
  end
  a = a + 7
end
for i = 1, nl do
  local key = KEYS[nc + i]
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
  local n = redis.call('ZCARD', key)
  inflight[i] = n
  if denied < 0 and n + 1 > tonumber(ARGV[a]) then
    denied = nc + i - 1
    retry = 1000
  end
  a = a + 3
end
if denied < 0 and not dry then
  a = 5
  for i = 1, nc do
    redis.call('HINCRBY', KEYS[i], ARGV[a], ARGV[a + 2])
    redis.call('PEXPIRE', KEYS[i], ARGV[a + 4])
    used[i] = used[i] + tonumber(ARGV[a + 2])
    if tonumber(ARGV[a + 5]) > 0 and tonumber(ARGV[a + 2]) > 0 then
      reset[i] = math.max(0, (curs[i] + curs[i] - tonumber(ARGV[a + 1]) + 1) * tonumber(ARGV[a + 5]) - now)
    end
    a = a + 7
  end
  for i = 1, nl do
    local key = KEYS[nc + i]
    redis.call('ZADD', key, ARGV[a + 2], ARGV[a + 1])
    redis.call('PEXPIRE', key, math.max(1000, tonumber(ARGV[a + 2]) - now + 1000))
    inflight[i] = inflight[i] + 1
    a = a + 3
  end
end
return { denied, retry, used, reset, inflight }
`;

/** Apply corrections only to buckets that still exist (a bucket that left its window stays gone). */
const SETTLE = `
local na = tonumber(ARGV[1])
local a = 2
for i = 1, na do
  if redis.call('HEXISTS', KEYS[i], ARGV[a]) == 1 then
    local v = redis.call('HINCRBY', KEYS[i], ARGV[a], ARGV[a + 1])
    if v < 0 then redis.call('HSET', KEYS[i], ARGV[a], 0) end
  end
  a = a + 2
end
for i = na + 1, #KEYS do
  redis.call('ZREM', KEYS[i], ARGV[a])
  a = a + 1
end
return 1
`;

type Reply = [number, number, number[], number[], number[]];

export class RedisBackend implements LimiterBackend {
  readonly kind = 'redis' as const;
  readonly client: Redis;

  constructor(url: string, onError: (e: unknown) => void) {
    // Fail fast while Redis is down (no offline queue, no per-command retries): the service applies
    // RATE_LIMIT_FAILURE at once instead of letting requests wait; ioredis reconnects by itself.
    this.client = newRedis(url, {
      // Commands of one turn of the event loop (checks and releases of many requests) go out as one
      // write: on loopback each socket write is a system call that wakes Redis, the largest cost here.
      enableAutoPipelining: true,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      connectTimeout: 1000,
      commandTimeout: 1000,
      retryStrategy: (times) => Math.min(50 * times, 500),
    });
    this.client.on('error', onError);
    this.client.defineCommand('gwzLimitCheck', { lua: CHECK });
    this.client.defineCommand('gwzLimitSettle', { lua: SETTLE });
  }

  /** Resolves once connected (or rejects after `ms`). */
  ready(ms = 2000): Promise<void> {
    if (this.client.status === 'ready') return Promise.resolve();
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('redis not ready')), ms);
      this.client.once('ready', () => {
        clearTimeout(t);
        resolve();
      });
    });
  }

  async check(input: CheckInput): Promise<CheckResult> {
    const keys: string[] = [];
    const args: (string | number)[] = [
      input.now,
      input.counters.length,
      input.leases.length,
      input.dry ? '1' : '0',
    ];
    for (const c of input.counters) {
      keys.push(c.key);
      args.push(c.cur, c.start, c.amount, c.limit, c.ttlMs, c.bucketMs, c.periodEnd);
    }
    for (const l of input.leases) {
      keys.push(l.key);
      args.push(l.limit, l.id, l.expiresAt);
    }
    const r = (await (this.client as any).gwzLimitCheck(keys.length, ...keys, ...args)) as Reply;
    return {
      denied: Number(r[0]),
      retryMs: Number(r[1]),
      used: r[2].map(Number),
      resetMs: r[3].map(Number),
      inFlight: r[4].map(Number),
    };
  }

  async settle(adjustments: Adjustment[], leases: Array<{ key: string; id: string }>): Promise<void> {
    if (adjustments.length === 0 && leases.length === 0) return;
    const keys: string[] = [];
    const args: (string | number)[] = [adjustments.length];
    for (const a of adjustments) {
      keys.push(a.key);
      args.push(a.field, a.delta);
    }
    for (const l of leases) {
      keys.push(l.key);
      args.push(l.id);
    }
    await (this.client as any).gwzLimitSettle(keys.length, ...keys, ...args);
  }

  async close(): Promise<void> {
    await closeRedis(this.client);
  }
}

/** Quit politely when connected (bounded in time); drop the connection otherwise, never hang. */
export async function closeRedis(client: Redis): Promise<void> {
  if (client.status !== 'ready') {
    client.disconnect();
    return;
  }
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    client.quit().catch(() => {}),
    new Promise<void>((resolve) => {
      timer = setTimeout(resolve, 1000);
    }),
  ]);
  clearTimeout(timer);
  client.disconnect();
}
