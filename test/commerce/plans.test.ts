import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, DATABASES } from '../helpers/db.js';
import { type RunningGateway, startGateway } from '../helpers/gateway.js';
import { type MockProvider, startMockProvider } from '../mocks/provider.js';

describe.each(DATABASES)('operator-defined plans (%s)', (kind) => {
  let or: MockProvider;
  let g: RunningGateway;

  beforeAll(async () => {
    or = await startMockProvider('openrouter');
    const db = await createTestDatabase(kind);
    const path = join(db.dataDir, 'gatewayz.config.json');
    writeFileSync(
      path,
      JSON.stringify({
        plans: [
          {
            id: 'starter',
            name: 'Starter',
            limits: { daily_request_limit: 2, max_concurrent_requests: 1 },
            allowed_models: ['openai/*'],
            features: ['basic'],
          },
          {
            id: 'pro',
            name: 'Pro',
            price_monthly_usd: 15,
            monthly_credits_usd: 15,
            limits: { daily_request_limit: 100 },
            allowed_models: ['*'],
          },
        ],
        defaultPlan: 'starter',
      }),
    );
    g = await startGateway(db, {
      OPENROUTER_API_KEY: 'k',
      OPENROUTER_BASE_URL: or.url,
      GATEWAYZ_CONFIG: path,
      JOBS_INTERVAL_MS: '0',
      TRIAL_AUTO_START: 'true',
    });
  });
  afterAll(async () => {
    await g?.close();
    await g?.db.drop();
    await or?.close();
  });

  const chat = (key: string, model: string) =>
    new OpenAI({ apiKey: key, baseURL: g.v1, maxRetries: 0 }).chat.completions.create({
      model,
      messages: [{ role: 'user', content: 'hi' }],
      max_tokens: 20,
    });

  it('serves the configured plans; the default plan’s models and limits bind, a new plan lifts them', async () => {
    const plans = (await (await fetch(`${g.url}/plans`)).json()) as any;
    expect(plans.plans.map((p: any) => p.id)).toEqual(['starter', 'pro']);
    expect(plans.default_plan).toBe('starter');
    const u = await g.createUser(5);
    // TRIAL_AUTO_START: the account got its trial when it was created.
    expect((await g.gw.commerce.trials.get(u.userId))?.status).toBe('active');
    expect((await g.gw.billing.balance(u.userId))!.trial_balance_micros).toBe(10_000_000);
    await expect(chat(u.apiKey, 'anthropic/claude-3.5-sonnet')).rejects.toMatchObject({
      status: 403,
      code: 'model_not_in_plan',
    });
    await chat(u.apiKey, 'openai/gpt-4o-mini');
    await chat(u.apiKey, 'openai/gpt-4o-mini');
    // The plan's daily request limit (2) is enforced by the limits service.
    await expect(chat(u.apiKey, 'openai/gpt-4o-mini')).rejects.toMatchObject({ status: 429 });

    const r = await g.admin('/admin/assign-plan', { user_id: u.userId, plan_id: 'pro' });
    expect(r.status).toBe(200);
    const res = await chat(u.apiKey, 'anthropic/claude-3.5-sonnet');
    expect(res.choices[0]?.message.content).toBeTruthy();
    await chat(u.apiKey, 'openai/gpt-4o-mini');
  });
});
