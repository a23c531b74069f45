import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, DATABASES } from '../helpers/db.js';
import { type RunningGateway, startGateway } from '../helpers/gateway.js';
import { expectedMicros, writePriceConfig } from '../helpers/prices.js';
import { type MockKind, type MockProvider, startMockProvider } from '../mocks/provider.js';

/** One model per provider wire format, each only in that provider's catalog; prices in USD per M. */
const CASES: Array<{
  kind: Exclude<MockKind, 'anthropic'>;
  model: string;
  prompt: number;
  completion: number;
}> = [
  { kind: 'openrouter', model: 'anthropic/claude-3.5-sonnet', prompt: 3, completion: 15 },
  { kind: 'openai', model: 'openai/gpt-4o-mini', prompt: 0.15, completion: 0.6 },
  { kind: 'featherless', model: 'Sao10K/L3-8B-Stheno-v3.2', prompt: 0.1, completion: 0.2 },
  { kind: 'chutes', model: 'deepseek-ai/DeepSeek-V3-0324', prompt: 0.27216, completion: 0.27216 },
  { kind: 'portkey', model: '@openai-prod/gpt-4o-mini', prompt: 0.15, completion: 0.6 },
];

const TOOLS = [
  {
    type: 'function' as const,
    function: {
      name: 'get_weather',
      description: 'Weather for a city',
      parameters: { type: 'object', properties: { location: { type: 'string' } }, required: ['location'] },
    },
  },
];

describe.each(DATABASES)('openai client against every provider wire format (%s)', (kind) => {
  const mocks = {} as Record<string, MockProvider>;
  let g: RunningGateway;
  let client: OpenAI;
  let userId: string;

  beforeAll(async () => {
    for (const c of CASES) {
      const key = `${c.kind}-secret`;
      mocks[c.kind] = await startMockProvider(c.kind, { options: { apiKey: key } });
    }
    // The OpenRouter mock must not also list the OpenAI model, so each case hits its own provider.
    mocks.openrouter!.models = mocks.openrouter!.models.filter((m) => m.id !== 'openai/gpt-4o-mini');
    const db = await createTestDatabase(kind);
    const env: Record<string, string> = {
      GATEWAYZ_CONFIG: writePriceConfig(db.dataDir),
      PORTKEY_VIRTUAL_KEY: 'vk-prod',
    };
    for (const c of CASES) {
      env[`${c.kind.toUpperCase()}_API_KEY`] = `${c.kind}-secret`;
      env[`${c.kind.toUpperCase()}_BASE_URL`] = mocks[c.kind]!.url;
    }
    g = await startGateway(db, env);
    const u = await g.createUser(10);
    userId = u.userId;
    client = new OpenAI({ apiKey: u.apiKey, baseURL: g.v1, maxRetries: 0 });
  });
  afterAll(async () => {
    await g?.close();
    await g?.db.drop();
    await Promise.all(Object.values(mocks).map((m) => m.close()));
  });

  it('models.list() lists every provider’s models, ids with their case', async () => {
    const ids: string[] = [];
    for await (const m of client.models.list()) ids.push(m.id);
    for (const c of CASES) expect(ids).toContain(c.model);
  });

  it.each(CASES)('non-stream, stream and tool calls via $kind, billed exactly', async (c) => {
    const mock = mocks[c.kind]!;
    mock.reset();
    const before = (await g.gw.billing.balance(userId))!.balance_micros;

    const r = await client.chat.completions.create({
      model: c.model,
      messages: [
        { role: 'system', content: 'Be brief.' },
        { role: 'user', content: 'Say hello to the gateway please' },
      ],
      temperature: 0,
      seed: 7,
      stop: ['zzz'],
      response_format: { type: 'text' },
      // a vendor field the gateway does not know must pass through untouched
      ...({ top_k: 3 } as object),
    });
    expect(r.choices[0]!.message.content).toMatch(/Hello from mock/);
    const sent = mock.calls.find((x) => x.path.endsWith('/chat/completions'))!;
    expect(sent.body.model).toBe(c.kind === 'openai' ? 'gpt-4o-mini' : c.model);
    expect(sent.body).toMatchObject({
      temperature: 0,
      seed: 7,
      stop: ['zzz'],
      response_format: { type: 'text' },
      top_k: 3,
    });
    expect(sent.body.max_tokens).toBeUndefined();
    if (c.kind === 'portkey') {
      expect(sent.headers['x-portkey-api-key']).toBe('portkey-secret');
      expect(sent.headers['x-portkey-virtual-key']).toBe('vk-prod');
    } else {
      expect(sent.headers.authorization).toBe(`Bearer ${c.kind}-secret`);
    }
    if (c.kind === 'openrouter') {
      expect(sent.headers['x-title']).toBe('Gatewayz');
      expect(sent.headers['http-referer']).toBeTruthy();
    }
    const gu = (r as any).gateway_usage;
    const u1 = sent.usage!;
    const cost1 = expectedMicros(u1.prompt_tokens, u1.completion_tokens, c.prompt, c.completion);
    expect(gu.cost_micros).toBe(cost1);
    expect(gu.provider).toBe(c.kind);
    expect(gu.tokens_charged).toBe(u1.prompt_tokens + u1.completion_tokens);

    const stream = await client.chat.completions.create({
      model: c.model,
      messages: [{ role: 'user', content: 'stream something for me' }],
      stream: true,
    });
    let text = '';
    let sawUsage = false;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta?.content ?? '';
      if (chunk.usage) sawUsage = true;
    }
    expect(text).toMatch(/^Hello from mock/);
    expect(sawUsage).toBe(false); // the client did not ask for usage: the usage chunk is hidden
    const streamed = mock.calls.filter((x) => x.path.endsWith('/chat/completions'))[1]!;
    expect(streamed.body.stream_options).toEqual({ include_usage: true });
    const u2 = streamed.usage!;
    const cost2 = expectedMicros(u2.prompt_tokens, u2.completion_tokens, c.prompt, c.completion);

    const t = await client.chat.completions.create({
      model: c.model,
      messages: [{ role: 'user', content: 'What is the weather in Paris?' }],
      tools: TOOLS,
      tool_choice: 'auto',
    });
    const call = t.choices[0]!.message.tool_calls![0]! as any;
    expect(call.function.name).toBe('get_weather');
    expect(JSON.parse(call.function.arguments)).toEqual({ location: 'Paris' });
    expect(t.choices[0]!.finish_reason).toBe('tool_calls');
    const toolSent = mock.calls.filter((x) => x.path.endsWith('/chat/completions'))[2]!;
    expect(toolSent.body.tools).toEqual(TOOLS);
    const u3 = toolSent.usage!;
    const cost3 = expectedMicros(u3.prompt_tokens, u3.completion_tokens, c.prompt, c.completion);

    // streamed tool calls arrive as deltas too
    const ts = await client.chat.completions.create({
      model: c.model,
      messages: [{ role: 'user', content: 'Weather in Paris, streamed' }],
      tools: TOOLS,
      stream: true,
      stream_options: { include_usage: true },
    });
    let args = '';
    let usageSeen = 0;
    for await (const chunk of ts) {
      args += chunk.choices[0]?.delta?.tool_calls?.[0]?.function?.arguments ?? '';
      if (chunk.usage) usageSeen++;
    }
    expect(JSON.parse(args)).toEqual({ location: 'Paris' });
    expect(usageSeen).toBe(1); // asked for: delivered once
    const u4 = mock.calls.filter((x) => x.path.endsWith('/chat/completions'))[3]!.usage!;
    const cost4 = expectedMicros(u4.prompt_tokens, u4.completion_tokens, c.prompt, c.completion);

    const after = (await g.gw.billing.balance(userId))!.balance_micros;
    expect(before - after).toBe(cost1 + cost2 + cost3 + cost4);
    expect(await g.gw.billing.ledgerSum(userId)).toBe(after);
  });

  it('retrieves one model by id (ids with slashes)', async () => {
    const m = await client.models.retrieve('Sao10K/L3-8B-Stheno-v3.2');
    expect(m.id).toBe('Sao10K/L3-8B-Stheno-v3.2');
  });
});
