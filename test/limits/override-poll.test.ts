import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminCreateUser, type GatewayProcess, spawnGateway } from '../fleet/process.js';
import { createTestDatabase, DATABASES, type TestDatabase } from '../helpers/db.js';
import { ADMIN_KEY } from '../helpers/gateway.js';
import { type MockProvider, startMockProvider } from '../mocks/provider.js';
import { chat } from './helpers.js';

// Without Redis there is no pub/sub: each instance polls the overrides table's fingerprint twice a
// second (src/limits/service.ts, LimitsStore.version) and drops its cached limits when it moves.
// Two processes, as deployed: two gateways in one process would share one thread, and a SQLite
// write of one then blocks that thread on a lock only the other can release (busy_timeout, 5 s).
describe.each(DATABASES)('two gateway processes on one database without Redis (%s)', (kind) => {
  let up: MockProvider;
  let db: TestDatabase;
  let a: GatewayProcess | undefined;
  let b: GatewayProcess | undefined;

  beforeAll(async () => {
    up = await startMockProvider('openrouter');
    db = await createTestDatabase(kind);
    const env = { OPENROUTER_API_KEY: 'or-key', OPENROUTER_BASE_URL: up.url };
    a = await spawnGateway(db, env); // runs the migrations
    b = await spawnGateway(db, env);
  }, 90_000);
  afterAll(async () => {
    for (const p of [b, a]) {
      if (p && p.proc.exitCode === null) {
        p.proc.kill('SIGTERM');
        await p.exited;
      }
    }
    await db?.drop();
    await up?.close();
  });

  const setRpm = async (keyId: string, requestsPerMinute: number) => {
    const res = await fetch(`${a!.url}/admin/rate-limits`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({ key_id: keyId, requests_per_minute: requestsPerMinute, reason: 'poll test' }),
    });
    expect(res.status).toBe(200);
  };

  it('an override set on one is enforced by the other within a second, again and again', async () => {
    const u = await adminCreateUser(a!.url, 10);
    // The first change is read fresh; each later one must move the fingerprint b polls (its query
    // compiled once and run every time) before b drops the limits it has cached.
    for (const limit of [1000, 3, 5]) {
      const t = Date.now();
      await setRpm(u.keyId, limit);
      let r = await chat(b!.url, u.apiKey);
      while (r.headers.get('x-ratelimit-limit-requests') !== String(limit) && Date.now() - t < 1500) {
        await new Promise((res) => setTimeout(res, 50));
        r = await chat(b!.url, u.apiKey);
      }
      expect(r.headers.get('x-ratelimit-limit-requests')).toBe(String(limit));
      expect(Date.now() - t).toBeLessThan(1000);
    }
    // and b enforces it: the minute's window is already past 5 requests, so the next is refused
    let refused = await chat(b!.url, u.apiKey);
    for (let i = 0; i < 10 && refused.status === 200; i++) refused = await chat(b!.url, u.apiKey);
    expect(refused.status).toBe(429);
    expect(refused.headers.get('x-ratelimit-limit-requests')).toBe('5');
  }, 30_000);
});
