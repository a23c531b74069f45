// Releases (token refunds, concurrency slots) on Redis wait for this process's next check, at most a
// few milliseconds, and go out with it as one script call: checked against a real Redis server.
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisBackend } from '../../src/limits/redis-backend.js';
import { position } from '../../src/limits/windows.js';

describe.runIf(process.env.TEST_REDIS_URL)('Redis limiter releases', () => {
  let a: RedisBackend;
  let b: RedisBackend;
  let raw: Redis;
  beforeAll(async () => {
    a = new RedisBackend(process.env.TEST_REDIS_URL!, () => {}, 50);
    b = new RedisBackend(process.env.TEST_REDIS_URL!, () => {}, 50);
    await Promise.all([a.ready(), b.ready()]);
    raw = new Redis(process.env.TEST_REDIS_URL!);
  });
  afterAll(async () => {
    await a?.close();
    await b?.close();
    raw?.disconnect();
  });

  const prefix = () => `gwztest:${randomBytes(6).toString('hex')}:`;
  const slot = (key: string, id: string, now: number) => ({
    now,
    counters: [],
    leases: [{ key, limit: 1, id, expiresAt: now + 60_000 }],
  });
  /** Script calls that name keys under `p`, while `fn` runs (Redis' MONITOR: other tests share the server). */
  const scriptCallsDuring = async (p: string, fn: () => Promise<unknown>) => {
    const monitor = await raw.monitor();
    let calls = 0;
    monitor.on('monitor', (_time: string, args: string[]) => {
      const cmd = String(args[0]).toLowerCase();
      if ((cmd === 'evalsha' || cmd === 'eval') && args.some((x) => String(x).startsWith(p))) calls++;
    });
    await new Promise((r) => setTimeout(r, 50));
    await fn();
    await new Promise((r) => setTimeout(r, 50));
    monitor.disconnect();
    return calls;
  };

  it("this process's next check sees its released slot; another process sees it once the release went out", async () => {
    const key = `${prefix()}inflight`;
    const now = Date.now();
    expect((await a.check(slot(key, 'r1', now))).denied).toBe(-1);
    const released = a.settle([], [{ key, id: 'r1' }]);
    // Not sent yet: the slot still looks taken from elsewhere.
    expect(await raw.zcard(key)).toBe(1);
    expect((await b.check(slot(key, 'r2', now))).denied).toBe(0);
    // This process's next check carries the release ahead of it: the slot is free for it.
    expect((await a.check(slot(key, 'r3', now))).denied).toBe(-1);
    await released;
    expect(await raw.zrange(key, '0', '-1')).toEqual(['r3']);
    // With no check to carry it, a release goes out by itself after the delay.
    const alone = a.settle([], [{ key, id: 'r3' }]);
    await alone;
    expect(await raw.zcard(key)).toBe(0);
    expect((await b.check(slot(key, 'r4', now))).denied).toBe(-1);
  });

  it('the releases of one wait go as one script call, each applied', async () => {
    const p = prefix();
    const now = Date.UTC(2026, 0, 1, 10, 0, 0);
    const pos = position('minute', now);
    const counters = Array.from({ length: 5 }, (_, i) => ({
      key: `${p}tokens${i}:minute`,
      amount: 100,
      limit: 1_000_000,
      ...pos,
    }));
    for (const c of counters) await a.check({ now, counters: [c], leases: [] });
    // Five requests end in the same moment, each refunding 40 of the 100 tokens it reserved.
    const calls = await scriptCallsDuring(p, () =>
      Promise.all(counters.map((c) => a.settle([{ key: c.key, field: c.cur, delta: -40 }], []))),
    );
    expect(calls).toBe(1);
    for (const c of counters) {
      const r = await a.check({ now, counters: [{ ...c, amount: 0 }], leases: [], dry: true });
      expect(r.used[0]).toBe(60);
    }
  });

  it('closing sends what still waits', async () => {
    const c = new RedisBackend(process.env.TEST_REDIS_URL!, () => {}, 60_000);
    await c.ready();
    const key = `${prefix()}inflight`;
    expect((await c.check(slot(key, 'x1', Date.now()))).denied).toBe(-1);
    void c.settle([], [{ key, id: 'x1' }]);
    await c.close();
    expect(await raw.zcard(key)).toBe(0);
  });
});
