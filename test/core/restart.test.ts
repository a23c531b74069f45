import { afterAll, describe, expect, it } from 'vitest';
import { createTestDatabase, DATABASES, type TestDatabase } from '../helpers/db.js';
import { startGateway } from '../helpers/gateway.js';
import { startMockProvider } from '../mocks/provider.js';

describe.each(DATABASES)('restart (%s)', (kind) => {
  let db: TestDatabase;
  afterAll(async () => {
    await db?.drop();
  });

  it('catalog and balances survive a restart; an upstream down at start leaves the stored catalog in service', async () => {
    db = await createTestDatabase(kind);
    const or = await startMockProvider('openrouter');
    const env = { OPENROUTER_API_KEY: 'k', OPENROUTER_BASE_URL: or.url };
    const g1 = await startGateway(db, env);
    const u = await g1.createUser(1);
    const r = await fetch(`${g1.v1}/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${u.apiKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'openai/gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] }),
    });
    const cost = (await r.json()).gateway_usage.cost_micros;
    await g1.close();

    // the provider's catalog endpoint is down while the gateway starts again
    or.setDefaultFault({ type: 'status', status: 503 });
    const g2 = await startGateway(db, env);
    try {
      const models = await (await fetch(`${g2.url}/models`)).json();
      expect(models.data.map((m: any) => m.id)).toContain('openai/gpt-4o-mini');
      const providers = await (await fetch(`${g2.url}/models/providers`)).json();
      const orStatus = providers.data.find((p: any) => p.name === 'openrouter');
      await new Promise((res) => setTimeout(res, 100)); // background sync records the failure
      const providers2 = await (await fetch(`${g2.url}/v1/provider`)).json();
      expect(orStatus.model_count).toBe(3);
      expect(providers2.data.find((p: any) => p.name === 'openrouter').status).toBe('error');
      const bal = await (
        await fetch(`${g2.url}/user/balance`, { headers: { authorization: `Bearer ${u.apiKey}` } })
      ).json();
      expect(bal.credits_micros).toBe(1_000_000 - cost);
      // the upstream recovers: the stored catalog kept routing possible throughout
      or.setDefaultFault(null);
      const r2 = await fetch(`${g2.v1}/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${u.apiKey}`, 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'openai/gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] }),
      });
      expect(r2.status).toBe(200);
    } finally {
      await g2.close();
      await or.close();
    }
  });
});
