// The Vercel AI SDK (`ai` + `@ai-sdk/openai`) and LangChain (`@langchain/openai`) through the
// gateway, on /v1/chat/completions and /v1/responses, streaming included; the balance moves by
// the expected cost.
import { createOpenAI } from '@ai-sdk/openai';
import { ChatOpenAI } from '@langchain/openai';
import { generateText, streamText } from 'ai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DATABASES } from '../helpers/db.js';
import type { MockProvider } from '../mocks/provider.js';
import {
  CLAUDE,
  CLAUDE_PRICE,
  expectedCost,
  GPT,
  GPT_PRICE,
  lastCall,
  OR_CLAUDE,
  OR_CLAUDE_PRICE,
  type PriceUsdPerM,
  type Surface,
  startSurface,
} from './anthropic-setup.js';

const FULL_TEXT = 'Hello from mock w4 w5 w6 w7 w8 w9 w10 w11 w12 ';

describe.each(DATABASES)('Vercel AI SDK and LangChain (%s)', (kind) => {
  let s: Surface;
  let apiKey: string;
  let userId: string;
  beforeAll(async () => {
    s = await startSurface(kind);
    const u = await s.g.createUser(10);
    apiKey = u.apiKey;
    userId = u.userId;
  });
  afterAll(async () => {
    await s?.close();
  });

  /** Run `fn`, then check the balance moved by the cost of the mock's last call on `path`. */
  const charged = async (mock: MockProvider, path: string, price: PriceUsdPerM, fn: () => Promise<void>) => {
    const before = await s.balance(userId);
    await fn();
    const up = lastCall(mock, path);
    expect(before - (await s.balance(userId))).toBe(expectedCost(up.usage!, price));
    expect(await s.held(userId)).toBe(0);
    return up;
  };

  describe('Vercel AI SDK', () => {
    const provider = () => createOpenAI({ apiKey, baseURL: s.g.v1 });

    it('generateText and streamText on chat completions (Anthropic model, translated)', async () => {
      await charged(s.anthropic, '/v1/messages', CLAUDE_PRICE, async () => {
        const r = await generateText({ model: provider().chat(CLAUDE), prompt: 'hello', maxRetries: 0 });
        expect(r.text).toBe(FULL_TEXT);
        expect(r.finishReason).toBe('stop');
        expect(r.usage.inputTokens).toBeGreaterThan(0);
      });
      await charged(s.anthropic, '/v1/messages', CLAUDE_PRICE, async () => {
        const r = streamText({ model: provider().chat(CLAUDE), prompt: 'hello', maxRetries: 0 });
        let text = '';
        for await (const t of r.textStream) text += t;
        expect(text).toBe(FULL_TEXT);
        expect((await r.usage).outputTokens).toBe(12);
      });
    });

    it('generateText and streamText on the Responses API (native and translated)', async () => {
      await charged(s.openai, '/v1/responses', GPT_PRICE, async () => {
        const r = await generateText({ model: provider().responses(GPT), prompt: 'hello', maxRetries: 0 });
        expect(r.text).toBe(FULL_TEXT);
      });
      await charged(s.openrouter, '/v1/chat/completions', OR_CLAUDE_PRICE, async () => {
        const r = await generateText({
          model: provider().responses(OR_CLAUDE),
          system: 'Be brief.',
          prompt: 'hello',
          maxRetries: 0,
        });
        expect(r.text).toBe(FULL_TEXT);
        expect(r.usage.outputTokens).toBe(12);
      });
      await charged(s.openrouter, '/v1/chat/completions', OR_CLAUDE_PRICE, async () => {
        const r = streamText({ model: provider().responses(OR_CLAUDE), prompt: 'hello', maxRetries: 0 });
        let text = '';
        for await (const t of r.textStream) text += t;
        expect(text).toBe(FULL_TEXT);
        expect(await r.finishReason).toBe('stop');
      });
    });
  });

  describe('LangChain', () => {
    const chat = (model: string, useResponsesApi = false) =>
      new ChatOpenAI({ model, apiKey, configuration: { baseURL: s.g.v1 }, maxRetries: 0, useResponsesApi });

    it('invoke and stream on chat completions', async () => {
      await charged(s.openai, '/v1/chat/completions', GPT_PRICE, async () => {
        const m = await chat(GPT).invoke('hello');
        expect(m.content).toBe(FULL_TEXT);
      });
      await charged(s.anthropic, '/v1/messages', CLAUDE_PRICE, async () => {
        let text = '';
        for await (const c of await chat(CLAUDE).stream('hello')) text += c.content as string;
        expect(text).toBe(FULL_TEXT);
      });
    });

    it('invoke and stream on the Responses API', async () => {
      await charged(s.openai, '/v1/responses', GPT_PRICE, async () => {
        const m = await chat(GPT, true).invoke('hello');
        expect(m.text).toBe(FULL_TEXT);
      });
      await charged(s.anthropic, '/v1/messages', CLAUDE_PRICE, async () => {
        let text = '';
        for await (const c of await chat(CLAUDE, true).stream('hello')) text += c.text;
        expect(text).toBe(FULL_TEXT);
      });
    });
  });
});
