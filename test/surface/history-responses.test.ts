import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, DATABASES } from '../helpers/db.js';
import { type RunningGateway, startGateway } from '../helpers/gateway.js';
import { type MockProvider, startMockProvider } from '../mocks/provider.js';

describe.each(DATABASES)('chat history on /v1/responses (%s)', (kind) => {
  let or: MockProvider;
  let g: RunningGateway;

  beforeAll(async () => {
    or = await startMockProvider('openrouter');
    g = await startGateway(await createTestDatabase(kind), {
      OPENROUTER_API_KEY: 'k',
      OPENROUTER_BASE_URL: or.url,
    });
  });
  afterAll(async () => {
    await g?.close();
    await g?.db.drop();
    await or?.close();
  });

  const session = async (key: string) => {
    const res = await fetch(`${g.url}/chat/sessions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ title: 'responses' }),
    });
    return ((await res.json()) as any).data.id as string;
  };
  const messages = async (key: string, sid: string) => {
    const res = await fetch(`${g.url}/chat/sessions/${sid}`, { headers: { authorization: `Bearer ${key}` } });
    return ((await res.json()) as any).data.messages as Array<{ role: string; content: string }>;
  };

  it('injects instructions, the stored turns, then the new input; saves both turns (stream and non-stream)', async () => {
    const u = await g.createUser(5);
    const sid = await session(u.apiKey);
    const client = new OpenAI({ apiKey: u.apiKey, baseURL: g.v1, maxRetries: 0 });
    const r1 = await client.responses.create(
      { model: 'openai/gpt-4o-mini', input: 'first question', instructions: 'Be brief.' },
      {
        query: { session_id: sid },
      },
    );
    expect(r1.output_text).toMatch(/Hello from mock/);
    let saved = await messages(u.apiKey, sid);
    expect(saved.map((m) => m.role)).toEqual(['user', 'assistant']);
    expect(saved[0]!.content).toBe('first question');
    expect(saved[1]!.content).toBe(r1.output_text);

    or.reset();
    const s = await client.responses.create(
      {
        model: 'openai/gpt-4o-mini',
        input: [{ role: 'user', content: [{ type: 'input_text', text: 'second question' }] }],
        instructions: 'Be brief.',
        stream: true,
      },
      { query: { session_id: sid } },
    );
    let text = '';
    for await (const ev of s) if (ev.type === 'response.output_text.delta') text += ev.delta;
    const sent = or.calls.find((c) => c.path.endsWith('/chat/completions'))!.body.messages as Array<{
      role: string;
      content: unknown;
    }>;
    expect(sent.map((m) => m.role)).toEqual(['system', 'user', 'assistant', 'user']);
    expect(sent[0]!.content).toBe('Be brief.');
    expect(sent[1]!.content).toBe('first question');
    expect(JSON.stringify(sent[3]!.content)).toContain('second question');
    saved = await messages(u.apiKey, sid);
    expect(saved.map((m) => m.role)).toEqual(['user', 'assistant', 'user', 'assistant']);
    expect(saved[3]!.content).toBe(text);
  });

  it('another user’s session is a 404 and nothing is charged', async () => {
    const owner = await g.createUser(5);
    const other = await g.createUser(5);
    const sid = await session(owner.apiKey);
    const client = new OpenAI({ apiKey: other.apiKey, baseURL: g.v1, maxRetries: 0 });
    await expect(
      client.responses.create({ model: 'openai/gpt-4o-mini', input: 'hi' }, { query: { session_id: sid } }),
    ).rejects.toMatchObject({ status: 404 });
    expect((await g.gw.billing.balance(other.userId))!.balance_micros).toBe(5_000_000);
  });
});
