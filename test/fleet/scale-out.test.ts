import { randomBytes } from 'node:crypto';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../helpers/db.js';
import { type RunningGateway, startGateway } from '../helpers/gateway.js';
import { type MockProvider, startMockProvider } from '../mocks/provider.js';

const REDIS = process.env.TEST_REDIS_URL;
const PG = process.env.TEST_DATABASE_URL;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.skipIf(!REDIS || !PG)('two instances on one PostgreSQL + Redis', () => {
  let or: MockProvider;
  let db: TestDatabase;
  let a: RunningGateway;
  let b: RunningGateway;
  beforeAll(async () => {
    or = await startMockProvider('openrouter');
    db = await createTestDatabase('postgres');
    const env = {
      OPENROUTER_API_KEY: 'or-key',
      OPENROUTER_BASE_URL: or.url,
      REDIS_URL: REDIS!,
      REDIS_PREFIX: `gwz-test:${randomBytes(6).toString('hex')}:`,
      // Without the bus, a cached key would stay valid for 10 minutes: only invalidation can pass this.
      KEY_CACHE_TTL_MS: '600000',
      CATALOG_SYNC_INTERVAL_MS: '300',
      HOLD_SWEEP_INTERVAL_MS: '200',
    };
    a = await startGateway(db, { ...env, INSTANCE_ID: 'gw-a' });
    b = await startGateway(db, { ...env, INSTANCE_ID: 'gw-b' });
  });
  afterAll(async () => {
    await a?.close();
    await b?.close();
    await db?.drop();
    await or?.close();
  });

  it('a key revoked on instance A is refused on instance B within 1 s', async () => {
    const u = await a.createUser(2);
    const created = await fetch(`${a.url}/user/api-keys`, {
      method: 'POST',
      headers: { authorization: `Bearer ${u.apiKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ key_name: 'second' }),
    });
    expect(created.status).toBe(201);
    const second = (await created.json()) as { api_key: string; key: { id: string } };
    const balance = (g: RunningGateway) =>
      fetch(`${g.url}/user/balance`, { headers: { authorization: `Bearer ${second.api_key}` } });
    expect((await balance(b)).status).toBe(200); // B has it cached now
    expect((await balance(a)).status).toBe(200);
    const revoked = await fetch(`${a.url}/user/api-keys/${second.key.id}`, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${u.apiKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ confirmation: 'DELETE_KEY' }),
    });
    expect(revoked.status).toBe(200);
    const t0 = performance.now();
    let status = 200;
    while (performance.now() - t0 < 3000) {
      status = (await balance(b)).status;
      if (status === 401) break;
      await sleep(20);
    }
    const took = performance.now() - t0;
    expect(status).toBe(401);
    expect(took).toBeLessThan(1000);
    // and inference with it is refused on B too
    const client = new OpenAI({ apiKey: second.api_key, baseURL: b.v1, maxRetries: 0 });
    await expect(
      client.chat.completions.create({
        model: 'openai/gpt-4o-mini',
        messages: [{ role: 'user', content: 'x' }],
      }),
    ).rejects.toMatchObject({ status: 401 });
  });

  it('control: without a shared bus (another REDIS_PREFIX) the revoked key stays cached on B', async () => {
    const env = {
      OPENROUTER_API_KEY: 'or-key',
      OPENROUTER_BASE_URL: or.url,
      REDIS_URL: REDIS!,
      KEY_CACHE_TTL_MS: '600000',
    };
    const c = await startGateway(db, { ...env, REDIS_PREFIX: `gwz-test:${randomBytes(6).toString('hex')}:` });
    const d = await startGateway(db, { ...env, REDIS_PREFIX: `gwz-test:${randomBytes(6).toString('hex')}:` });
    try {
      const u = await c.createUser(1);
      const created = await fetch(`${c.url}/user/api-keys`, {
        method: 'POST',
        headers: { authorization: `Bearer ${u.apiKey}`, 'content-type': 'application/json' },
        body: JSON.stringify({ key_name: 'second' }),
      });
      const second = (await created.json()) as { api_key: string; key: { id: string } };
      const balance = (g: RunningGateway) =>
        fetch(`${g.url}/user/balance`, { headers: { authorization: `Bearer ${second.api_key}` } });
      expect((await balance(d)).status).toBe(200);
      const revoked = await fetch(`${c.url}/user/api-keys/${second.key.id}`, {
        method: 'DELETE',
        headers: { authorization: `Bearer ${u.apiKey}`, 'content-type': 'application/json' },
        body: JSON.stringify({ confirmation: 'DELETE_KEY' }),
      });
      expect(revoked.status).toBe(200);
      expect((await balance(c)).status).toBe(401);
      await sleep(1200);
      expect((await balance(d)).status).toBe(200);
    } finally {
      await c.close();
      await d.close();
    }
  });

  it('the catalog sync job runs on one instance only', async () => {
    await sleep(200);
    const before = or.calls.filter((c) => c.path.endsWith('/models')).length;
    await sleep(1600);
    const n = or.calls.filter((c) => c.path.endsWith('/models')).length - before;
    // ~5 ticks of 300 ms by the one leader; two runners would make ~10.
    expect(n).toBeGreaterThanOrEqual(3);
    expect(n).toBeLessThanOrEqual(7);
  });

  it('the hold sweeper job releases holds a dead instance left behind', async () => {
    const u = await a.createUser(1);
    // A hold as a crashed process leaves it: taken, never settled, already expired.
    expect(
      await a.gw.billing.hold('hold_dead_1', u.userId, u.keyId, 250_000, 'req_dead', Date.now() - 10_000, 1),
    ).toBe(true);
    expect((await a.gw.billing.balance(u.userId))?.held_micros).toBe(250_000);
    const t0 = Date.now();
    while ((await a.gw.billing.balance(u.userId))?.held_micros !== 0 && Date.now() - t0 < 3000)
      await sleep(50);
    expect((await a.gw.billing.balance(u.userId))?.held_micros).toBe(0);
    expect(await a.gw.billing.ledgerSum(u.userId)).toBe(1_000_000);
  });
});
