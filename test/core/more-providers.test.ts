import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROVIDERS } from '../../src/providers/definitions.js';
import { createTestDatabase } from '../helpers/db.js';
import { type RunningGateway, startGateway } from '../helpers/gateway.js';
import { expectedMicros, writePriceConfig } from '../helpers/prices.js';
import { type MockProvider, startMockProvider } from '../mocks/provider.js';

describe('more OpenAI-compatible providers', () => {
  it('Together’s bare-array catalog with per-million prices becomes exact per-token prices', () => {
    const models = PROVIDERS.together!.parseCatalog([
      {
        id: 'meta-llama/Llama-3.3-70B-Instruct-Turbo',
        type: 'chat',
        context_length: 131072,
        pricing: { input: 0.88, output: 0.88, hourly: 0 },
      },
      { id: 'no/prices', type: 'chat' },
    ]);
    expect(models[0]!.pricing).toEqual({ prompt: '0.00000088', completion: '0.00000088' });
    expect(models[0]!.contextLength).toBe(131072);
    expect(models[1]!.pricing).toBeNull();
  });

  describe('DeepInfra over its OpenAI-compatible wire', () => {
    let di: MockProvider;
    let g: RunningGateway;
    beforeAll(async () => {
      di = await startMockProvider('openai', {
        models: [{ id: 'meta-llama/Meta-Llama-3.1-8B-Instruct' }],
        options: { apiKey: 'di' },
      });
      const db = await createTestDatabase('sqlite');
      g = await startGateway(db, {
        DEEPINFRA_API_KEY: 'di',
        DEEPINFRA_BASE_URL: di.url,
        GATEWAYZ_CONFIG: writePriceConfig(db.dataDir, {
          prices: {
            deepinfra: { 'meta-llama/Meta-Llama-3.1-8B-Instruct': { prompt: 0.03, completion: 0.05 } },
          },
        }),
      });
    });
    afterAll(async () => {
      await g?.close();
      await g?.db.drop();
      await di?.close();
    });

    it('serves and bills a DeepInfra model', async () => {
      const u = await g.createUser(1);
      const client = new OpenAI({ apiKey: u.apiKey, baseURL: g.v1, maxRetries: 0 });
      const r = await client.chat.completions.create({
        model: 'meta-llama/Meta-Llama-3.1-8B-Instruct',
        messages: [{ role: 'user', content: 'hi' }],
      });
      const usage = di.calls.at(-1)!.usage!;
      expect((r as any).gateway_usage.provider).toBe('deepinfra');
      expect((r as any).gateway_usage.cost_micros).toBe(
        expectedMicros(usage.prompt_tokens, usage.completion_tokens, 0.03, 0.05),
      );
      expect(di.calls.at(-1)!.headers.authorization).toBe('Bearer di');
    });
  });
});
