import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, DATABASES, type TestDatabase } from '../helpers/db.js';
import { type RunningGateway, startGateway } from '../helpers/gateway.js';
import { type MockProvider, startMockProvider } from '../mocks/provider.js';
import { chat, getJson, setLimits } from './helpers.js';

describe.each(DATABASES)('in-process quotas across a restart (%s)', (kind) => {
  let up: MockProvider;
  let db: TestDatabase;
  let g: RunningGateway | undefined;
  beforeAll(async () => {
    up = await startMockProvider('openrouter');
    db = await createTestDatabase(kind);
  });
  afterAll(async () => {
    await g?.close();
    await db?.drop();
    await up?.close();
  });

  it('a daily quota is not handed out afresh when the single process restarts', async () => {
    const env = { OPENROUTER_API_KEY: 'or-key', OPENROUTER_BASE_URL: up.url };
    g = await startGateway(db, env);
    const u = await g.createUser(5);
    await setLimits(g, { key_id: u.keyId, requests_per_day: 3, tokens_per_day: 1_000_000 });
    expect((await chat(g.url, u.apiKey)).status).toBe(200);
    expect((await chat(g.url, u.apiKey)).status).toBe(200);
    await g.close();

    g = await startGateway(db, env);
    const third = await chat(g.url, u.apiKey);
    expect(third.status).toBe(200);
    expect(third.headers.get('x-ratelimit-remaining-requests')).toBe('0');
    const fourth = await chat(g.url, u.apiKey);
    expect(fourth.status).toBe(429);
    expect(fourth.body.error.type).toBe('requests_per_day_exceeded');
    expect(up.calls.filter((c) => c.method === 'POST').length).toBe(3);
    const mine = await getJson(`${g.url}/user/rate-limits`, u.apiKey);
    const tpd = mine.body.key.usage.windows.find((w: any) => w.limit === 'tokens_per_day');
    expect(tpd.used).toBeGreaterThan(0);
  });
});
