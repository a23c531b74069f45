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
local dry = ARGV[2] == '1'
-- numbers go to Redis as integers (Redis writes a Lua number below 1e17 with all its digits)
local C = cjson.decode(ARGV[3])
local L = cjson.decode(ARGV[4])
local nc = #C
local nl = #L
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

-- counter: { cur, start, amount, limit, ttlMs, bucketMs, periodEnd }
for i = 1, nc do
  local key = KEYS[i]
  local c = C[i]
  local cur = c[1]; local start = c[2]; local amount = c[3]; local limit = c[4]; local bucketMs = c[6]; local periodEnd = c[7]
  local m = redis.call('HMGET', key, '-1', '-2', '-3', cur, '-4')
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
    if exists then redis.call('HSET', key, '-1', sum, '-2', start, '-3', now) end
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
end
-- lease: { limit, id, expiresAt }
for i = 1, nl do
  local key = KEYS[nc + i]
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
  local n = redis.call('ZCARD', key)
  inflight[i] = n
  if denied < 0 and n + 1 > L[i][1] then
    denied = nc + i - 1
    retry = 1000
  end
end
if denied < 0 and not dry then
  for i = 1, nc do
    local c = C[i]
    local f = c[1]
    local ttl = c[5]
    used[i] = used[i] + c[3]
    curv[i] = curv[i] + c[3]
    -- the key's expiry ('-4') is pushed back when it falls half a second short of the counter's lifetime
    if expiry[i] < now + ttl - 500 then
      redis.call('HSET', KEYS[i], f, curv[i], '-1', used[i], '-2', c[2], '-3', built[i], '-4', now + ttl)
      redis.call('PEXPIRE', KEYS[i], ttl)
    elseif marked[i] then
      redis.call('HSET', KEYS[i], f, curv[i], '-1', used[i])
    else
      redis.call('HSET', KEYS[i], f, curv[i], '-1', used[i], '-2', c[2], '-3', built[i])
    end
  end
  for i = 1, nl do
    local key = KEYS[nc + i]
    local exp = L[i][3]
    redis.call('ZADD', key, exp, L[i][2])
    redis.call('PEXPIRE', key, math.max(1000, exp - now + 1000))
    inflight[i] = inflight[i] + 1
  end
end
-- ms until everything counted has left the window: from the newest bucket with units, which is the
-- current one whenever it has any (else the buckets are looked at)
for i = 1, nc do
  local c = C[i]
  local cur = c[1]; local start = c[2]; local bucketMs = c[6]; local periodEnd = c[7]
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
end
-- one string: an array reply of arrays costs the client more to take apart than JSON.parse does
return '[' .. denied .. ',' .. retry .. ',[' .. table.concat(used, ',') .. '],[' .. table.concat(reset, ',') .. '],[' .. table.concat(inflight, ',') .. ']]'
`;

/**
 * Apply corrections only to buckets that still exist (a bucket that left its window stays gone),
 * and to the running sum when it counts that bucket (one from its window start on).
 * ARGV[1]: [[bucket, delta], …] for the first keys; ARGV[2]: [lease id, …] for the others.
 */
const SETTLE = `
-- numbers go to Redis as integers (Redis writes a Lua number below 1e17 with all its digits)
local A = cjson.decode(ARGV[1])
local ids = cjson.decode(ARGV[2])
for i = 1, #A do
  local key = KEYS[i]
  local f = A[i][1]
  local m = redis.call('HMGET', key, f, '-1', '-2')
  if m[1] then
    local old = tonumber(m[1])
    local new = old + A[i][2]
    if new < 0 then new = 0 end
    if m[2] and m[3] and A[i][1] >= tonumber(m[3]) then
      redis.call('HSET', key, f, new, '-1', tonumber(m[2]) + new - old)
    else
      redis.call('HSET', key, f, new)
    end
  end
end
for i = 1, #ids do
  redis.call('ZREM', KEYS[#A + i], ids[i])
end
return 1
`;

type Reply = [number, number, number[], number[], number[]];

/** Releases waiting to go out as one script call (see `settle`). */
interface SettleBatch {
  adjustKeys: string[];
  changes: number[][];
  leaseKeys: string[];
  ids: string[];
  done: Promise<void>;
  resolve: () => void;
  reject: (e: unknown) => void;
}

export class RedisBackend implements LimiterBackend {
  readonly kind = 'redis' as const;
  readonly client: Redis;
  private batch: SettleBatch | null = null;
  private batchTimer: NodeJS.Timeout | null = null;
  private readonly sendSoon = () => this.sendSettles();

  constructor(
    url: string,
    onError: (e: unknown) => void,
    /** At most this long a release waits for this process's next check to go out with it (see `settle`). */
    private readonly settleDelayMs = 5,
  ) {
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
    // Every number goes as one JSON argument: a hundred separate arguments cost the client (and the
    // garbage collector) more than the script's cjson.decode costs Redis.
    const keys: string[] = [];
    const counters: number[][] = [];
    for (const c of input.counters) {
      keys.push(c.key);
      counters.push([c.cur, c.start, c.amount, c.limit, c.ttlMs, c.bucketMs, c.periodEnd]);
    }
    const leases: Array<[number, string, number]> = [];
    for (const l of input.leases) {
      keys.push(l.key);
      leases.push([l.limit, l.id, l.expiresAt]);
    }
    // Releases waiting go first, in the same write (auto-pipelining) and, on this connection, before
    // this check: it sees every slot this process has freed.
    if (this.batch) this.sendSettles();
    const reply = await (this.client as any).gwzLimitCheck(
      keys.length,
      ...keys,
      input.now,
      input.dry ? '1' : '0',
      JSON.stringify(counters),
      JSON.stringify(leases),
    );
    const r = JSON.parse(reply) as Reply;
    return { denied: r[0], retryMs: r[1], used: r[2], resetMs: r[3], inFlight: r[4] };
  }

  /**
   * A request's release (token refund, concurrency slot). It waits for this process's next check, at
   * most `settleDelayMs`, and goes out with it: on loopback each socket write wakes Redis, the
   * largest cost of a request's limits, and under load a release and a check then share a write;
   * at low load (a client's requests one after another) its next request's check carries it. The
   * releases of one wait go as ONE script call. This process's next check runs after them (same
   * connection, in order); another instance sees a slot free at most `settleDelayMs` later.
   */
  settle(adjustments: Adjustment[], leases: Array<{ key: string; id: string }>): Promise<void> {
    if (adjustments.length === 0 && leases.length === 0) return Promise.resolve();
    let b = this.batch;
    if (!b) {
      let resolve!: () => void;
      let reject!: (e: unknown) => void;
      const done = new Promise<void>((res, rej) => {
        resolve = res;
        reject = rej;
      });
      b = { adjustKeys: [], changes: [], leaseKeys: [], ids: [], done, resolve, reject };
      this.batch = b;
      this.batchTimer = setTimeout(this.sendSoon, this.settleDelayMs);
    }
    for (const a of adjustments) {
      b.adjustKeys.push(a.key);
      b.changes.push([a.field, a.delta]);
    }
    for (const l of leases) {
      b.leaseKeys.push(l.key);
      b.ids.push(l.id);
    }
    return b.done;
  }

  private sendSettles(): void {
    const b = this.batch;
    if (!b) return;
    this.batch = null;
    if (this.batchTimer) clearTimeout(this.batchTimer);
    this.batchTimer = null;
    const keys = b.adjustKeys.concat(b.leaseKeys);
    (this.client as any)
      .gwzLimitSettle(keys.length, ...keys, JSON.stringify(b.changes), JSON.stringify(b.ids))
      .then(b.resolve, b.reject);
  }

  async close(): Promise<void> {
    if (this.batch) {
      const { done } = this.batch;
      this.sendSettles();
      await done.catch(() => {});
    }
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
