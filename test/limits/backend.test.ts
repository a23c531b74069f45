import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LimiterBackend, MemoryBackend } from '../../src/limits/backend.js';
import { loadLimitsConfig } from '../../src/limits/config.js';
import { RedisBackend } from '../../src/limits/redis-backend.js';
import { formatDuration } from '../../src/limits/service.js';
import { type CounterSpec, position, type WindowName } from '../../src/limits/windows.js';
import { BACKENDS } from './helpers.js';

// Backend arithmetic, identical in process and in the Redis script; the clock is the caller's.
describe.each(BACKENDS)('limiter backend (%s)', (kind) => {
  let backend: LimiterBackend;
  const prefix = `gwztest:${randomBytes(6).toString('hex')}:`;
  beforeAll(async () => {
    if (kind === 'memory') backend = new MemoryBackend();
    else {
      const rb = new RedisBackend(process.env.TEST_REDIS_URL!, () => {});
      await rb.ready();
      backend = rb;
    }
  });
  afterAll(async () => {
    await backend?.close();
  });

  const counter = (name: string, w: WindowName, now: number, amount: number, limit: number): CounterSpec => ({
    key: `${prefix}${name}:${w}`,
    amount,
    limit,
    ...position(w, now),
  });

  it('sliding hour: never more than the limit in any hour; room comes back as old buckets leave', async () => {
    const t0 = Date.UTC(2026, 0, 1, 10, 0, 0);
    const take = (t: number) =>
      backend.check({ now: t, counters: [counter('h', 'hour', t, 1, 3)], leases: [] });
    expect((await take(t0)).denied).toBe(-1);
    expect((await take(t0 + 20 * 60_000)).denied).toBe(-1);
    expect((await take(t0 + 40 * 60_000)).denied).toBe(-1);
    const r = await take(t0 + 50 * 60_000);
    expect(r.denied).toBe(0);
    expect(r.used[0]).toBe(3);
    // the first unit leaves once its bucket is out of the window: at most one bucket after 1 h
    expect(r.retryMs).toBeGreaterThanOrEqual(10 * 60_000);
    expect(r.retryMs).toBeLessThanOrEqual(11 * 60_000);
    expect((await take(t0 + 60 * 60_000 - 1)).denied).toBe(0);
    expect((await take(t0 + 50 * 60_000 + r.retryMs)).denied).toBe(-1);
  });

  it('sliding minute: usage, reset and expiry agree with the buckets, however many there are', async () => {
    const t0 = Date.UTC(2026, 0, 1, 10, 0, 0, 250);
    const take = (t: number, amount = 1, dry = false) =>
      backend.check({ now: t, counters: [counter('s', 'minute', t, amount, 1000)], leases: [], dry });
    // one unit in each of 60 one-second buckets
    for (let i = 0; i < 60; i++) expect((await take(t0 + i * 1000)).used[0]).toBe(i + 1);
    const last = t0 + 59 * 1000;
    // everything counted leaves 60 buckets after the newest one: reset = end of bucket (59 + 60) - now
    let r = await take(last, 0, true);
    expect(r.used[0]).toBe(60);
    expect(r.resetMs[0]).toBe((Math.floor(last / 1000) + 61) * 1000 - last);
    // 61 s after the first unit, its bucket has left the window (exactly one unit gone)
    r = await take(t0 + 61_000, 0, true);
    expect(r.used[0]).toBe(59);
    // a refund (settle) lowers the current bucket and the usage with it
    await backend.settle([{ key: `${prefix}s:minute`, field: Math.floor(last / 1000), delta: -1 }], []);
    r = await take(t0 + 61_000, 0, true);
    expect(r.used[0]).toBe(58);
    // long after, nothing is left and nothing waits for a reset
    r = await take(t0 + 10 * 60_000, 0, true);
    expect(r.used[0]).toBe(0);
    expect(r.resetMs[0]).toBe(0);
  });

  it('calendar month: resets on the 1st (UTC)', async () => {
    const t0 = Date.UTC(2026, 0, 31, 23, 59, 0);
    const take = (t: number) =>
      backend.check({ now: t, counters: [counter('m', 'month', t, 5, 10)], leases: [] });
    expect((await take(t0)).denied).toBe(-1);
    expect((await take(t0)).denied).toBe(-1);
    const r = await take(t0 + 1000);
    expect(r.denied).toBe(0);
    expect(r.retryMs).toBe(Date.UTC(2026, 1, 1) - (t0 + 1000));
    expect((await take(Date.UTC(2026, 1, 1))).denied).toBe(-1);
  });

  it('all or nothing: a refused check takes nothing from the other counters or leases', async () => {
    const t = Date.UTC(2026, 0, 2);
    const a = counter('a', 'minute', t, 1, 100);
    const b = counter('b', 'minute', t, 7, 5);
    const lease = { key: `${prefix}l`, limit: 1, id: 'x', expiresAt: t + 60_000 };
    const r = await backend.check({ now: t, counters: [a, b], leases: [lease] });
    expect(r.denied).toBe(1);
    expect(r.retryMs).toBe(-1); // 7 > 5: never fits
    const peek = await backend.check({
      now: t,
      counters: [{ ...a, amount: 0 }],
      leases: [{ ...lease, id: 'y' }],
      dry: true,
    });
    expect(peek.used).toEqual([0]);
    expect(peek.inFlight).toEqual([0]);
  });

  it('leases: one slot per request until released or expired; refunds go to the bucket that took them', async () => {
    const t = Date.UTC(2026, 0, 3);
    const key = `${prefix}c`;
    const take = (id: string, now = t) =>
      backend.check({ now, counters: [], leases: [{ key, limit: 2, id, expiresAt: now + 1000 }] });
    expect((await take('1')).denied).toBe(-1);
    expect((await take('2')).denied).toBe(-1);
    const third = await take('3');
    expect(third.denied).toBe(0);
    expect(third.inFlight).toEqual([2]);
    await backend.settle([], [{ key, id: '1' }]);
    expect((await take('3')).denied).toBe(-1);
    // a crashed holder's lease expires
    expect((await take('4', t + 1001)).denied).toBe(-1);

    const tok = counter('tok', 'minute', t, 400, 1000);
    expect((await backend.check({ now: t, counters: [tok], leases: [] })).used).toEqual([400]);
    await backend.settle([{ key: tok.key, field: tok.cur, delta: -380 }], []);
    const after = await backend.check({
      now: t + 10,
      counters: [{ ...tok, amount: 0 }],
      leases: [],
      dry: true,
    });
    expect(after.used).toEqual([20]);
  });
});

describe('limits configuration', () => {
  it('parses and validates the environment', () => {
    const c = loadLimitsConfig({
      PROVIDER_MAX_CONCURRENCY: 'openrouter=8, *=2',
      DEFAULT_REQUESTS_PER_MINUTE: '60',
    });
    expect(c.providerConcurrency).toEqual({ openrouter: 8, '*': 2 });
    expect(c.defaults.requestsPerMinute).toBe(60);
    expect(c.defaults.tokensPerDay).toBeNull();
    expect(c.failure).toBe('closed');
    expect(c.enabled).toBe(true);
    expect(loadLimitsConfig({ PROVIDER_MAX_CONCURRENCY: '4' }).providerConcurrency).toEqual({ '*': 4 });
    expect(() => loadLimitsConfig({ RATE_LIMIT_FAILURE: 'maybe' })).toThrow(/RATE_LIMIT_FAILURE/);
    expect(() => loadLimitsConfig({ PROVIDER_MAX_CONCURRENCY: 'openrouter=0' })).toThrow(
      /PROVIDER_MAX_CONCURRENCY/,
    );
    expect(() => loadLimitsConfig({ DEFAULT_TOKENS_PER_DAY: '-5' })).toThrow(/DEFAULT_TOKENS_PER_DAY/);
    expect(loadLimitsConfig({ RATE_LIMITS_ENABLED: 'false' }).enabled).toBe(false);
  });

  it("formats durations like OpenAI's reset headers", () => {
    expect(formatDuration(20)).toBe('20ms');
    expect(formatDuration(1000)).toBe('1s');
    expect(formatDuration(360_000)).toBe('6m0s');
    expect(formatDuration(3_723_500)).toBe('1h2m3.5s');
  });
});
