import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, DATABASES } from '../helpers/db.js';
import { type RunningGateway, startGateway } from '../helpers/gateway.js';
import { writePriceConfig } from '../helpers/prices.js';
import { type MockProvider, startMockProvider } from '../mocks/provider.js';

describe.each(DATABASES)('routing (%s)', (kind) => {
  let or: MockProvider;
  let fl: MockProvider;
  let ch: MockProvider;
  let g: RunningGateway;
  let client: OpenAI;

  beforeAll(async () => {
    or = await startMockProvider('openrouter');
    fl = await startMockProvider('featherless');
    ch = await startMockProvider('chutes');
    // one model served by all three, one only by Featherless (case-sensitive), one only by Chutes
    const shared = { id: 'shared/Model-X', context_length: 4096, max_completion_tokens: 512 };
    or.models.push({ ...shared, pricing: { prompt: '0.000001', completion: '0.000002' } });
    fl.models.push(shared, { id: 'sao10k/l3-8b-stheno-v3.2', context_length: 8192 });
    ch.models.push({ ...shared, pricing: { prompt: '0.000001', completion: '0.000002' } });
    const db = await createTestDatabase(kind);
    const config = writePriceConfig(db.dataDir, {
      prices: {
        featherless: {
          'Sao10K/L3-8B-Stheno-v3.2': { prompt: 0.1, completion: 0.2 },
          'sao10k/l3-8b-stheno-v3.2': { prompt: 0.3, completion: 0.4 },
          'shared/Model-X': { prompt: 1, completion: 2 },
        },
      },
    });
    g = await startGateway(db, {
      OPENROUTER_API_KEY: 'a',
      OPENROUTER_BASE_URL: or.url,
      FEATHERLESS_API_KEY: 'b',
      FEATHERLESS_BASE_URL: fl.url,
      CHUTES_API_KEY: 'c',
      CHUTES_BASE_URL: ch.url,
      GATEWAYZ_CONFIG: config,
    });
    const u = await g.createUser(10);
    client = new OpenAI({ apiKey: u.apiKey, baseURL: g.v1, maxRetries: 0 });
  });
  afterAll(async () => {
    await g?.close();
    await g?.db.drop();
    await Promise.all([or, fl, ch].map((m) => m?.close()));
  });

  const lastModel = (m: MockProvider) =>
    m.calls.filter((c) => c.path.endsWith('/chat/completions')).at(-1)?.body.model;
  const ask = (model: string, extra: Record<string, unknown> = {}) =>
    client.chat.completions
      .create({ model, messages: [{ role: 'user', content: 'hi' }], ...extra } as any)
      .withResponse();

  it('a Featherless-only model goes to Featherless, its id’s case kept', async () => {
    const { data, response } = await ask('Sao10K/L3-8B-Stheno-v3.2');
    expect(response.headers.get('x-gatewayz-provider')).toBe('featherless');
    expect(lastModel(fl)).toBe('Sao10K/L3-8B-Stheno-v3.2');
    expect((data as any).gateway_usage.model).toBe('Sao10K/L3-8B-Stheno-v3.2');
    // a differently-cased id is a different model with its own price
    const r2 = await ask('sao10k/l3-8b-stheno-v3.2');
    expect(lastModel(fl)).toBe('sao10k/l3-8b-stheno-v3.2');
    expect((r2.data as any).gateway_usage.model).toBe('sao10k/l3-8b-stheno-v3.2');
    await expect(ask('SAO10K/L3-8B-STHENO-V3.2')).rejects.toMatchObject({ status: 404 });
  });

  it('a Chutes-only model goes to Chutes', async () => {
    const { response } = await ask('deepseek-ai/DeepSeek-V3-0324');
    expect(response.headers.get('x-gatewayz-provider')).toBe('chutes');
    expect(lastModel(ch)).toBe('deepseek-ai/DeepSeek-V3-0324');
  });

  it('a shared model follows the preference order; provider pins, as a string or OpenRouter’s object', async () => {
    expect((await ask('shared/Model-X')).response.headers.get('x-gatewayz-provider')).toBe('openrouter');
    expect(
      (await ask('shared/Model-X', { provider: 'chutes' })).response.headers.get('x-gatewayz-provider'),
    ).toBe('chutes');
    const pinned = await ask('shared/Model-X', {
      provider: { order: ['featherless'], allow_fallbacks: false },
    });
    expect(pinned.response.headers.get('x-gatewayz-provider')).toBe('featherless');
    expect((pinned.data as any).gateway_usage.provider).toBe('featherless');
    const ignored = await ask('shared/Model-X', { provider: { ignore: ['openrouter'] } });
    expect(ignored.response.headers.get('x-gatewayz-provider')).not.toBe('openrouter');
    // the routing field is the gateway's business: not forwarded
    expect(fl.calls.at(-1)!.body.provider).toBeUndefined();
  });

  it('an explicit provider that does not serve the model, or is not enabled, is a clear error', async () => {
    await expect(ask('deepseek-ai/DeepSeek-V3-0324', { provider: 'featherless' })).rejects.toMatchObject({
      status: 404,
    });
    await expect(ask('shared/Model-X', { provider: 'nonexistent' })).rejects.toMatchObject({
      status: 400,
      error: { param: 'provider' },
    });
  });
});
