import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, DATABASES } from '../helpers/db.js';
import { type RunningGateway, startGateway } from '../helpers/gateway.js';
import { type MockProvider, startMockProvider } from '../mocks/provider.js';

describe.each(DATABASES)('smoke (%s)', (kind) => {
  let or: MockProvider;
  let g: RunningGateway;
  beforeAll(async () => {
    or = await startMockProvider('openrouter');
    const db = await createTestDatabase(kind);
    g = await startGateway(db, { OPENROUTER_API_KEY: 'or-key', OPENROUTER_BASE_URL: or.url });
  });
  afterAll(async () => {
    await g?.close();
    await g?.db.drop();
    await or?.close();
  });

  it('chat through the openai client', async () => {
    const u = await g.createUser(5);
    const client = new OpenAI({ apiKey: u.apiKey, baseURL: g.v1 });
    const r = await client.chat.completions.create({
      model: 'openai/gpt-4o-mini',
      messages: [{ role: 'user', content: 'hi there' }],
    });
    expect(r.choices[0]?.message.content).toBeTruthy();
    expect((r as any).gateway_usage.cost_usd).toBeGreaterThan(0);
    const s = await client.chat.completions.create({
      model: 'openai/gpt-4o-mini',
      messages: [{ role: 'user', content: 'hi there' }],
      stream: true,
    });
    let text = '';
    for await (const c of s) text += c.choices[0]?.delta?.content ?? '';
    expect(text.length).toBeGreaterThan(0);
  });
});
