import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, DATABASES, type TestDatabase } from '../helpers/db.js';
import { type RunningGateway, startGateway } from '../helpers/gateway.js';
import { type MockProvider, startMockProvider } from '../mocks/provider.js';
import { chat, setLimits } from './helpers.js';

// Without Redis there is no pub/sub: each instance polls the overrides table's fingerprint twice a
// second (src/limits/service.ts, LimitsStore.version) and drops its cached limits when it moves.
describe.each(DATABASES)('two gateways on one database without Redis (%s)', (kind) => {
  let up: MockProvider;
  let db: TestDatabase;
  let a: RunningGateway;
  let b: RunningGateway;

  beforeAll(async () => {
    up = await startMockProvider('openrouter');
    db = await createTestDatabase(kind);
    const env = { OPENROUTER_API_KEY: 'or-key', OPENROUTER_BASE_URL: up.url };
    a = await startGateway(db, env); // runs the migrations
    b = await startGateway(db, env);
  }, 60_000);
  afterAll(async () => {
    await b?.close();
    await a?.close();
    await db?.drop();
    await up?.close();
  });

  it('an override set on one is enforced by the other within a second, again and again', async () => {
    const u = await a.createUser(10);
    // The first change is read fresh; each later one must move the fingerprint b polls (its query
    // compiled once and run every time) before b drops the limits it has cached.
    for (const limit of [1000, 3, 5]) {
      const t = Date.now();
      await setLimits(a, { key_id: u.keyId, requests_per_minute: limit, reason: 'poll test' });
      let r = await chat(b.url, u.apiKey);
      while (r.headers.get('x-ratelimit-limit-requests') !== String(limit) && Date.now() - t < 1500) {
        await new Promise((res) => setTimeout(res, 50));
        r = await chat(b.url, u.apiKey);
      }
      expect(r.headers.get('x-ratelimit-limit-requests')).toBe(String(limit));
      expect(Date.now() - t).toBeLessThan(1000);
    }
    // and b enforces it: the minute's window is already past 5 requests, so the next is refused
    let refused = await chat(b.url, u.apiKey);
    for (let i = 0; i < 10 && refused.status === 200; i++) refused = await chat(b.url, u.apiKey);
    expect(refused.status).toBe(429);
    expect(refused.headers.get('x-ratelimit-limit-requests')).toBe('5');
  });
});
