import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, DATABASES } from '../helpers/db.js';
import { type RunningGateway, startGateway } from '../helpers/gateway.js';
import { type MockProvider, startMockProvider } from '../mocks/provider.js';
import { chat, setLimits } from './helpers.js';
import { ThrowawayRedis } from './redis-server.js';

// Needs the redis-server binary; runs with the other Redis tests (TEST_REDIS_URL set).
describe.skipIf(!process.env.TEST_REDIS_URL).each(DATABASES)('Redis stopped mid-test (%s)', (kind) => {
  let up: MockProvider;
  let redis: ThrowawayRedis;
  let closed: RunningGateway;
  let open: RunningGateway;
  const logs: Array<{ level: number; msg: string }> = [];

  beforeAll(async () => {
    up = await startMockProvider('openrouter');
    redis = await ThrowawayRedis.start();
    const db = await createTestDatabase(kind);
    const env = { OPENROUTER_API_KEY: 'or-key', OPENROUTER_BASE_URL: up.url, REDIS_URL: redis.url };
    closed = await startGateway(db, env, {
      logger: { level: 'info', stream: { write: (line: string) => logs.push(JSON.parse(line)) } },
    });
    open = await startGateway(db, { ...env, RATE_LIMIT_FAILURE: 'open' });
  });
  afterAll(async () => {
    await closed?.close();
    await open?.close();
    await closed?.db.drop();
    await redis?.down();
    await up?.close();
  });

  const health = async (g: RunningGateway) => (await fetch(`${g.url}/health`)).json() as Promise<any>;

  it('fails closed (503) or open (200) as configured, reports it in /health, and recovers by itself', async () => {
    const u = await closed.createUser(5);
    await setLimits(closed, { key_id: u.keyId, requests_per_minute: 100 });
    expect((await chat(closed.url, u.apiKey)).status).toBe(200);
    expect((await chat(open.url, u.apiKey)).status).toBe(200);
    expect((await health(closed)).rate_limits).toMatchObject({ status: 'ok', backend: 'redis' });

    await redis.down();
    const refused = await chat(closed.url, u.apiKey);
    expect(refused.status).toBe(503);
    expect(refused.body.error.type).toBe('rate_limit_unavailable');
    expect(refused.headers.get('retry-after')).toBe('1');
    const calls = up.calls.length;
    const served = await chat(open.url, u.apiKey);
    expect(served.status).toBe(200);
    expect(up.calls.length).toBe(calls + 1);
    const h = await health(closed);
    expect(h.status).toBe('degraded');
    expect(h.rate_limits).toMatchObject({ status: 'down', failure_mode: 'closed' });
    expect((await health(open)).rate_limits).toMatchObject({ status: 'down', failure_mode: 'open' });
    // still alive after a burst of refusals
    const burst = await Promise.all(Array.from({ length: 10 }, () => chat(closed.url, u.apiKey)));
    expect(burst.every((r) => r.status === 503)).toBe(true);

    await redis.up();
    let status = 0;
    for (let i = 0; i < 100 && status !== 200; i++) {
      await new Promise((r) => setTimeout(r, 100));
      status = (await chat(closed.url, u.apiKey)).status;
    }
    expect(status).toBe(200);
    expect((await health(closed)).rate_limits.status).toBe('ok');
    // the outage was logged once (not once per refused request or reconnect attempt), the recovery too
    const down = logs.filter((l) => l.msg?.startsWith('rate limiter backend (redis) unavailable'));
    expect(down).toHaveLength(1);
    expect(down[0]!.level).toBe(50);
    expect(logs.filter((l) => l.msg === 'rate limiter backend recovered')).toHaveLength(1);
    // limits hold again after the recovery (the counters restarted with the empty server)
    await setLimits(closed, { key_id: u.keyId, requests_per_minute: 2 });
    const rs = [];
    for (let i = 0; i < 4; i++) rs.push((await chat(closed.url, u.apiKey)).status);
    expect(rs.filter((s) => s === 429).length).toBeGreaterThanOrEqual(2);
  });
});
