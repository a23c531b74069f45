// The Responses adapter chooses the wire per target: when the native provider fails before the
// first byte, the fallback provider is served through the chat-completions translation, and only
// the provider that answered is billed.
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DATABASES } from '../helpers/db.js';
import { expectedCost, GPT, lastCall, type Surface, startSurface } from './anthropic-setup.js';

describe.each(DATABASES)('/v1/responses falls back across wire formats (%s)', (kind) => {
  let s: Surface;
  let client: OpenAI;
  let userId: string;
  beforeAll(async () => {
    s = await startSurface(kind, { sharedGpt: true });
    const u = await s.g.createUser(10);
    userId = u.userId;
    client = new OpenAI({ apiKey: u.apiKey, baseURL: s.g.v1, maxRetries: 0 });
  });
  afterAll(async () => {
    await s?.close();
  });

  it('native OpenAI fails with 503 → OpenRouter serves it over chat completions, stream and not', async () => {
    const order = { provider: { order: ['openai', 'openrouter'] } } as Record<string, unknown>;
    for (const stream of [false, true]) {
      const before = await s.balance(userId);
      s.openai.setDefaultFault({ type: 'status', status: 503 }); // however often the router retries it
      const nResponses = s.openai.calls.length;
      let text: string;
      let raw: any;
      if (stream) {
        const st = client.responses.stream({ model: GPT, input: 'hello', ...order } as any);
        raw = await st.finalResponse();
        text = raw.output_text;
      } else {
        raw = await client.responses.create({ model: GPT, input: 'hello', ...order } as any);
        text = raw.output_text;
        expect(raw.gateway_usage.provider).toBe('openrouter');
        expect(raw.gateway_usage.attempts).toBeGreaterThanOrEqual(2);
      }
      s.openai.setDefaultFault(null);
      expect(s.openai.calls.length).toBeGreaterThan(nResponses); // the native attempt(s)
      expect(lastCall(s.openai, '/v1/responses').status).toBe(503);
      const up = lastCall(s.openrouter, '/v1/chat/completions');
      expect(up.body.messages).toEqual([{ role: 'user', content: 'hello' }]);
      expect(up.body.provider).toBeUndefined();
      expect(text).toBe('Hello from mock w4 w5 w6 w7 w8 w9 w10 w11 w12 ');
      expect(raw.id).toMatch(/^resp_/);
      // billed at OpenRouter's price for the model (0.15 / 0.6 per M, cached 0.075)
      expect(before - (await s.balance(userId))).toBe(
        expectedCost(up.usage!, { prompt: 0.15, completion: 0.6, cache_read: 0.075 }),
      );
    }
  });
});
