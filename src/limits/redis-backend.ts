import type { Redis } from 'ioredis';
import { newRedis } from '../lib/optional.js';
import type { Adjustment, CheckInput, CheckResult, LimiterBackend } from './backend.js';

/**
 * One round trip per request: every counter (hash of bucket → units) and every concurrency lease
 * set (sorted set of lease id → expiry) of the request is read, checked and — only when all pass —
 * incremented inside one script, so instances sharing Redis see one exact count.
 * The time comes from the caller (injectable clock; instances keep their clocks NTP-synced).
 *
 * A counter's hash also keeps its running sum, as the in-process backend does, so a check reads
 * three fields instead of every bucket (a sliding window has 61: reading and summing them all was
 * ~22 µs of Redis time per check, Redis' whole cost per request). The sum lives in fields with
 * negative names, which no bucket has: '-1' the sum of the buckets from '-2' (a window start) on,
 * '-3' when it was computed from the buckets. A check trusts it only for the same window start and
 * for 1 s, else sums the buckets again (and drops those that left the window): once per bucket of a
 * sliding window, and whatever wrote to the buckets without the sum (the previous release of this
 * script during a rolling upgrade, which drops these fields as buckets below its window) is
 * counted again within a second.
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
local curv = {}
local built = {}
local lives = {}
local expiry = {}
-- whether the hash has this check's window start and sum time ('-2', '-3') already
local marked = {}

-- The live buckets of a counter (dropping those below the window), their sum, and whether the hash exists.
local function buckets(key, start)
  local h = redis.call('HGETALL', key)
  local live = {}
  local sum = 0
  for j = 1, #h, 2 do
    local b = tonumber(h[j])
    if b ~= nil and b >= 0 then
      if b < start then
        redis.call('HDEL', key, h[j])
      else
        local c = tonumber(h[j + 1])
        sum = sum + c
        live[#live + 1] = { b, c }
      end
    end
  end
  return sum, live, #h > 0
end
local function int(x) return string.format('%.0f', x) end

local a = 5
for i = 1, nc do
  local key = KEYS[i]
  local cur = tonumber(ARGV[a]); local start = tonumber(ARGV[a + 1]); local amount = tonumber(ARGV[a + 2])
  local limit = tonumber(ARGV[a + 3]); local bucketMs = tonumber(ARGV[a + 5]); local periodEnd = tonumber(ARGV[a + 6])
  local m = redis.call('HMGET', key, '-1', '-2', '-3', ARGV[a], '-4')
  local at = tonumber(m[3])
  local sum
  if m[1] and tonumber(m[2]) == start and at and now >= at and now - at < 1000 then
    sum = tonumber(m[1])
    built[i] = at
    marked[i] = true
  else
    local exists
    sum, lives[i], exists = buckets(key, start)
    built[i] = now
    if exists then redis.call('HSET', key, '-1', int(sum), '-2', ARGV[a + 1], '-3', ARGV[1]) end
    marked[i] = exists
  end
  expiry[i] = tonumber(m[5]) or 0
  used[i] = sum
  curv[i] = tonumber(m[4]) or 0
  if denied < 0 and sum + amount > limit then
    denied = i - 1
    if amount > limit then
      retry = -1
    elseif bucketMs == 0 then
      retry = math.max(0, periodEnd - now)
    else
      if not lives[i] then local _; _, lives[i] = buckets(key, start) end
      local live = lives[i]
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
    local amount = tonumber(ARGV[a + 2])
    local ttl = tonumber(ARGV[a + 4])
    used[i] = used[i] + amount
    curv[i] = curv[i] + amount
    -- the key's expiry ('-4') is pushed back when it falls half a second short of the counter's lifetime
    if expiry[i] < now + ttl - 500 then
      redis.call('HSET', KEYS[i], ARGV[a], int(curv[i]), '-1', int(used[i]), '-2', ARGV[a + 1], '-3', int(built[i]), '-4', int(now + ttl))
      redis.call('PEXPIRE', KEYS[i], ttl)
    elseif marked[i] then
      redis.call('HSET', KEYS[i], ARGV[a], int(curv[i]), '-1', int(used[i]))
    else
      redis.call('HSET', KEYS[i], ARGV[a], int(curv[i]), '-1', int(used[i]), '-2', ARGV[a + 1], '-3', int(built[i]))
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
-- ms until everything counted has left the window: from the newest bucket with units, which is the
-- current one whenever it has any (else the buckets are looked at)
a = 5
for i = 1, nc do
  local cur = tonumber(ARGV[a]); local start = tonumber(ARGV[a + 1])
  local bucketMs = tonumber(ARGV[a + 5]); local periodEnd = tonumber(ARGV[a + 6])
  if bucketMs == 0 then
    reset[i] = math.max(0, periodEnd - now)
  else
    local newest = -1
    if curv[i] > 0 then
      newest = cur
    else
      if not lives[i] then local _; _, lives[i] = buckets(KEYS[i], start) end
      for _, e in ipairs(lives[i]) do if e[2] > 0 and e[1] > newest then newest = e[1] end end
    end
    if newest < 0 then reset[i] = 0 else reset[i] = math.max(0, (newest + cur - start + 1) * bucketMs - now) end
  end
  a = a + 7
end
return { denied, retry, used, reset, inflight }
`;

/**
 * Apply corrections only to buckets that still exist (a bucket that left its window stays gone),
 * and to the running sum when it counts that bucket (one from its window start on).
 */
const SETTLE = `
local na = tonumber(ARGV[1])
local a = 2
for i = 1, na do
  local key = KEYS[i]
  local m = redis.call('HMGET', key, ARGV[a], '-1', '-2')
  if m[1] then
    local old = tonumber(m[1])
    local new = old + tonumber(ARGV[a + 1])
    if new < 0 then new = 0 end
    if m[2] and m[3] and tonumber(ARGV[a]) >= tonumber(m[3]) then
      redis.call('HSET', key, ARGV[a], string.format('%.0f', new), '-1', string.format('%.0f', tonumber(m[2]) + new - old))
    else
      redis.call('HSET', key, ARGV[a], string.format('%.0f', new))
    end
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
