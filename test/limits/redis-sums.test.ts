// The Redis script keeps a running sum per counter (as the in-process backend does): it must agree
// with the in-process backend on every check, whatever the order of checks, refunds and clock jumps,
// and count buckets written without the sum (the previous release of the script) within a second.
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CheckInput, MemoryBackend } from '../../src/limits/backend.js';
import { RedisBackend } from '../../src/limits/redis-backend.js';
import { type CounterSpec, position, type WindowName } from '../../src/limits/windows.js';

describe.runIf(process.env.TEST_REDIS_URL)('Redis limiter running sums', () => {
  let redis: RedisBackend;
  let raw: Redis;
  beforeAll(async () => {
    redis = new RedisBackend(process.env.TEST_REDIS_URL!, () => {});
    await redis.ready();
    raw = new Redis(process.env.TEST_REDIS_URL!);
  });
  afterAll(async () => {
    await redis?.close();
    raw?.disconnect();
  });

  // a small deterministic generator, so a failure replays
  const rng = (seed: number) => () => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed / 2147483648;
  };

  it('agree with the in-process backend over 3,000 random checks, refunds and clock jumps', async () => {
    const memory = new MemoryBackend();
    const prefix = `gwztest:${randomBytes(6).toString('hex')}:`;
    const r = rng(42);
    const windows: WindowName[] = ['minute', 'hour', 'day', 'month'];
    const limits = [40, 300, 900, 5000];
    let now = Date.UTC(2026, 0, 31, 23, 50, 0, 123);
    let last: CounterSpec[] = [];
    let admitted = 0;
    let refused = 0;
    for (let step = 0; step < 3000; step++) {
      const jump = r();
      now +=
        jump < 0.6
          ? Math.floor(r() * 400)
          : jump < 0.95
            ? Math.floor(r() * 3000)
            : Math.floor(r() * 3_700_000);
      const amount = r() < 0.1 ? 0 : 1 + Math.floor(r() * 6);
      const counters = windows.map((w, i) => ({
        key: `${prefix}${w}`,
        amount,
        limit: limits[i]!,
        ...position(w, now),
      }));
      const input: CheckInput = { now, counters, leases: [], dry: r() < 0.1 };
      const [m, x] = [await memory.check(input), await redis.check(input)];
      expect(x, `step ${step}`).toEqual(m);
      if (!input.dry && m.denied < 0) {
        admitted++;
        last = counters;
      } else if (m.denied >= 0) refused++;
      if (last.length && r() < 0.3) {
        // a refund (or a top-up) of the last admitted request's reservation
        const delta = -Math.floor(r() * 8) + (r() < 0.2 ? 3 : 0);
        const adjustments = last.map((c) => ({ key: c.key, field: c.cur, delta }));
        await memory.settle(adjustments, []);
        await redis.settle(adjustments, []);
      }
    }
    // the sequence went through both outcomes, and through refused windows that came back
    expect(admitted).toBeGreaterThan(500);
    expect(refused).toBeGreaterThan(100);
  });

  it('count buckets written without the sum (the previous script) within a second, and read the previous layout', async () => {
    const key = `gwztest:${randomBytes(6).toString('hex')}:minute`;
    const spec = (now: number, amount: number): CounterSpec => ({
      key,
      amount,
      limit: 1000,
      ...position('minute', now),
    });
    const check = (now: number, amount = 1, dry = false) =>
      redis.check({ now, counters: [spec(now, amount)], leases: [], dry });
    const t0 = Date.UTC(2026, 0, 5, 12, 0, 0, 0);
    // the previous layout: buckets only, no sum
    const cur = Math.floor(t0 / 1000);
    await raw.hset(key, String(cur - 70), '9', String(cur - 30), '4', String(cur - 1), '5');
    await raw.pexpire(key, 62_000);
    expect((await check(t0)).used[0]).toBe(10); // 4 + 5 + this one; the bucket 70 s old is gone
    expect(await raw.hexists(key, String(cur - 70))).toBe(0);
    // another writer adds to a bucket without the sum: not seen for up to a second, then counted
    await raw.hincrby(key, String(cur), 20);
    expect((await check(t0 + 500, 0, true)).used[0]).toBe(10);
    expect((await check(t0 + 999, 0, true)).used[0]).toBe(10);
    expect((await check(t0 + 1000, 0, true)).used[0]).toBe(30);
    // the previous script drops the sum's fields (negative bucket names, below its window): summed again
    await raw.hdel(key, '-1', '-2', '-3');
    expect((await check(t0 + 1100)).used[0]).toBe(31);
    // a refund of a bucket the sum counts lowers it at once; one that left the window changes nothing
    await redis.settle([{ key, field: cur, delta: -5 }], []);
    expect((await check(t0 + 1200, 0, true)).used[0]).toBe(26);
    // a sum for a later window start (the bucket 30 s old still in it) counts a refund of that bucket
    expect((await check(t0 + 20_000, 0, true)).used[0]).toBe(26);
    await redis.settle([{ key, field: cur - 30, delta: -4 }], []);
    expect((await check(t0 + 20_100, 0, true)).used[0]).toBe(22);
    // once the bucket left the window it is dropped, and a refund of it changes nothing
    await raw.hincrby(key, String(cur - 30), 7);
    expect((await check(t0 + 45_000, 0, true)).used[0]).toBe(22); // 17 now + 5 a second before t0
    await redis.settle([{ key, field: cur - 30, delta: -3 }], []);
    expect((await check(t0 + 45_100, 0, true)).used[0]).toBe(22);
    expect((await check(t0 + 90_000, 0, true)).used[0]).toBe(0);
  });
});
