// /v1/chat/completions for anthropic/* models: OpenAI-shaped requests translated to Anthropic's
// Messages API and the answers (JSON and event streams) translated back; billed from Anthropic's
// own usage, cache reads and writes included.
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DATABASES } from '../helpers/db.js';
import {
  ANTHROPIC_KEY,
  CLAUDE,
  CLAUDE_PRICE,
  expectedCost,
  lastCall,
  PNG_B64,
  PNG_DATA_URL,
  type Surface,
  startSurface,
} from './anthropic-setup.js';

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

describe.each(DATABASES)('chat completions over the Anthropic provider (%s)', (kind) => {
  let s: Surface;
  let client: OpenAI;
  let userId: string;
  beforeAll(async () => {
    s = await startSurface(kind);
    const u = await s.g.createUser(10);
    userId = u.userId;
    client = new OpenAI({ apiKey: u.apiKey, baseURL: s.g.v1, maxRetries: 0 });
  });
  afterAll(async () => {
    await s?.close();
  });

  it('serves anthropic/<id> from the Anthropic catalog with its credentials and version header', async () => {
    const models = (await (await fetch(`${s.g.url}/v1/models`)).json()) as { data: Array<{ id: string }> };
    expect(models.data.map((m) => m.id)).toContain(CLAUDE);
    const r = await client.chat.completions.create({
      model: CLAUDE,
      messages: [{ role: 'user', content: 'hi' }],
    });
    expect(r.choices[0]!.message.content).toBe('Hello from mock w4 w5 w6 w7 w8 w9 w10 w11 w12 ');
    const call = lastCall(s.anthropic, '/v1/messages');
    expect(call.headers['x-api-key']).toBe(ANTHROPIC_KEY);
    expect(call.headers['anthropic-version']).toBe('2023-06-01');
    expect(call.body.model).toBe('claude-3-5-sonnet-20241022');
    expect(call.body.max_tokens).toBeGreaterThan(0); // Anthropic requires it even when the caller set none
  });

  it('translates system prompts, images, tool calls and tool results into Messages, and tool_use back', async () => {
    const before = await s.balance(userId);
    s.anthropic.options.anthropicCache = { read: 7, write: 5 };
    const r = await client.chat.completions.create({
      model: CLAUDE,
      max_tokens: 300,
      stop: ['never-appears'],
      temperature: 0.5,
      messages: [
        { role: 'system', content: 'You are terse.' },
        {
          role: 'user',
          content: [
            { type: 'text', text: 'What is in this picture and what is the weather?' },
            { type: 'image_url', image_url: { url: PNG_DATA_URL } },
            { type: 'image_url', image_url: { url: 'https://example.com/cat.png' } },
          ],
        },
        {
          role: 'assistant',
          content: null,
          tool_calls: [
            {
              id: 'toolu_prev',
              type: 'function',
              function: { name: 'get_weather', arguments: '{"location":"Rome"}' },
            },
          ],
        },
        { role: 'tool', tool_call_id: 'toolu_prev', content: 'sunny, 21C' },
        { role: 'user', content: 'And Paris?' },
      ],
      tools: TOOLS,
      tool_choice: 'required',
    });
    s.anthropic.options.anthropicCache = undefined;
    const up = lastCall(s.anthropic, '/v1/messages');
    expect(up.body.system).toBe('You are terse.');
    expect(up.body.max_tokens).toBe(300);
    expect(up.body.stop_sequences).toEqual(['never-appears']);
    expect(up.body.temperature).toBe(0.5);
    expect(up.body.tools).toEqual([
      {
        name: 'get_weather',
        description: 'Weather for a city',
        input_schema: TOOLS[0]!.function.parameters,
      },
    ]);
    expect(up.body.tool_choice).toEqual({ type: 'any' });
    expect(up.body.messages).toEqual([
      {
        role: 'user',
        content: [
          { type: 'text', text: 'What is in this picture and what is the weather?' },
          { type: 'image', source: { type: 'base64', media_type: 'image/png', data: PNG_B64 } },
          { type: 'image', source: { type: 'url', url: 'https://example.com/cat.png' } },
        ],
      },
      {
        role: 'assistant',
        content: [{ type: 'tool_use', id: 'toolu_prev', name: 'get_weather', input: { location: 'Rome' } }],
      },
      {
        role: 'user',
        content: [
          { type: 'tool_result', tool_use_id: 'toolu_prev', content: 'sunny, 21C' },
          { type: 'text', text: 'And Paris?' },
        ],
      },
    ]);
    // the answer: a tool_use block becomes an OpenAI tool call
    const choice = r.choices[0]!;
    expect(choice.finish_reason).toBe('tool_calls');
    expect(choice.message.content).toBeNull();
    expect(choice.message.tool_calls).toHaveLength(1);
    const tc = choice.message.tool_calls![0]! as {
      id: string;
      function: { name: string; arguments: string };
    };
    expect(tc.id).toMatch(/^toolu_/);
    expect(tc.function.name).toBe('get_weather');
    expect(JSON.parse(tc.function.arguments)).toEqual({ location: 'Paris' });
    // usage: prompt_tokens is the total (Anthropic's input_tokens excludes cache reads and writes)
    const billed = up.usage!;
    expect(r.usage!.prompt_tokens).toBe(billed.prompt_tokens);
    expect(r.usage!.prompt_tokens_details?.cached_tokens).toBe(7);
    expect(r.usage!.completion_tokens).toBe(billed.completion_tokens);
    const cost = expectedCost(billed, CLAUDE_PRICE);
    expect(before - (await s.balance(userId))).toBe(cost);
    expect((r as any).gateway_usage.cost_micros).toBe(cost);
  });

  it('maps stop reasons: max_tokens → length, stop_sequence and end_turn → stop', async () => {
    const short = await client.chat.completions.create({
      model: CLAUDE,
      max_tokens: 2,
      messages: [{ role: 'user', content: 'hi' }],
    });
    expect(lastCall(s.anthropic, '/v1/messages').body.max_tokens).toBe(2);
    expect(short.choices[0]!.finish_reason).toBe('length');
    expect(short.choices[0]!.message.content).toBe('Hello from ');
    const stopped = await client.chat.completions.create({
      model: CLAUDE,
      stop: 'w5',
      messages: [{ role: 'user', content: 'hi' }],
    });
    expect(stopped.choices[0]!.finish_reason).toBe('stop');
    expect(stopped.choices[0]!.message.content).toBe('Hello from mock w4 ');
  });

  it('streams text: Anthropic events become chat chunks; usage (cache included) billed exactly', async () => {
    const before = await s.balance(userId);
    s.anthropic.options.anthropicCache = { read: 3, write: 11 };
    const stream = await client.chat.completions.create({
      model: CLAUDE,
      messages: [
        { role: 'system', content: 'Be brief.' },
        { role: 'user', content: 'tell me something' },
      ],
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = '';
    let finish: string | null = null;
    let usage: OpenAI.CompletionUsage | undefined;
    let first = true;
    for await (const c of stream) {
      if (first) {
        expect(c.choices[0]?.delta.role).toBe('assistant');
        first = false;
      }
      text += c.choices[0]?.delta?.content ?? '';
      finish = c.choices[0]?.finish_reason ?? finish;
      if (c.usage) usage = c.usage;
    }
    s.anthropic.options.anthropicCache = undefined;
    const up = lastCall(s.anthropic, '/v1/messages');
    expect(up.body.stream).toBe(true);
    expect(up.body.system).toBe('Be brief.');
    expect(text).toBe('Hello from mock w4 w5 w6 w7 w8 w9 w10 w11 w12 ');
    expect(finish).toBe('stop');
    expect(usage!.prompt_tokens).toBe(up.usage!.prompt_tokens);
    expect(usage!.prompt_tokens_details?.cached_tokens).toBe(3);
    expect(before - (await s.balance(userId))).toBe(expectedCost(up.usage!, CLAUDE_PRICE));
    expect(await s.held(userId)).toBe(0);
  });

  it('streams tool use: tool_use blocks and input_json deltas become indexed tool_call deltas', async () => {
    const stream = await client.chat.completions.create({
      model: CLAUDE,
      messages: [{ role: 'user', content: 'weather in Paris?' }],
      tools: TOOLS,
      stream: true,
    });
    let args = '';
    let name = '';
    let id = '';
    let finish: string | null = null;
    let sawUsage = false;
    for await (const c of stream) {
      for (const tc of c.choices[0]?.delta?.tool_calls ?? []) {
        expect(tc.index).toBe(0);
        if (tc.id) id = tc.id;
        if (tc.function?.name) name = tc.function.name;
        args += tc.function?.arguments ?? '';
      }
      finish = c.choices[0]?.finish_reason ?? finish;
      if (c.usage) sawUsage = true;
    }
    expect(id).toMatch(/^toolu_/);
    expect(name).toBe('get_weather');
    expect(JSON.parse(args)).toEqual({ location: 'Paris' });
    expect(finish).toBe('tool_calls');
    expect(sawUsage).toBe(false); // the client did not ask for usage
  });

  it('response_format json_schema is served through a forced tool; its input comes back as the content', async () => {
    const schema = { type: 'object', properties: { location: { type: 'string' } } };
    const r = await client.chat.completions.create({
      model: CLAUDE,
      messages: [{ role: 'user', content: 'where?' }],
      response_format: { type: 'json_schema', json_schema: { name: 'place', schema } },
    });
    const up = lastCall(s.anthropic, '/v1/messages');
    expect(up.body.tools).toEqual([
      { name: 'json_response', description: expect.any(String), input_schema: schema },
    ]);
    expect(up.body.tool_choice).toEqual({ type: 'tool', name: 'json_response' });
    expect(r.choices[0]!.finish_reason).toBe('stop');
    expect(r.choices[0]!.message.tool_calls).toBeUndefined();
    expect(JSON.parse(r.choices[0]!.message.content!)).toEqual({ location: 'Paris' });
    const stream = await client.chat.completions.create({
      model: CLAUDE,
      messages: [{ role: 'user', content: 'where?' }],
      response_format: { type: 'json_schema', json_schema: { name: 'place', schema } },
      stream: true,
    });
    let text = '';
    let finish: string | null = null;
    for await (const c of stream) {
      expect(c.choices[0]?.delta?.tool_calls).toBeUndefined();
      text += c.choices[0]?.delta?.content ?? '';
      finish = c.choices[0]?.finish_reason ?? finish;
    }
    expect(JSON.parse(text)).toEqual({ location: 'Paris' });
    expect(finish).toBe('stop');
  });

  it('n > 1 is refused for Anthropic models before anything is charged', async () => {
    const before = await s.balance(userId);
    const calls = s.anthropic.calls.length;
    await expect(
      client.chat.completions.create({ model: CLAUDE, n: 2, messages: [{ role: 'user', content: 'hi' }] }),
    ).rejects.toMatchObject({ status: 400, param: 'n' });
    expect(s.anthropic.calls.length).toBe(calls);
    expect(await s.balance(userId)).toBe(before);
    expect(await s.held(userId)).toBe(0);
  });

  it('a stream Anthropic breaks off is charged for what was delivered and ends with an error event', async () => {
    const before = await s.balance(userId);
    s.anthropic.faults.push({ type: 'break', afterChunks: 2 });
    const res = await fetch(`${s.g.v1}/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${(client as any).apiKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: CLAUDE, stream: true, messages: [{ role: 'user', content: 'hi' }] }),
    });
    const body = await res.text();
    expect(body).toContain('Hello from mock');
    expect(body).toContain('upstream_stream_error');
    expect(body).not.toContain('[DONE]');
    const charged = before - (await s.balance(userId));
    // prompt: Anthropic's exact count from message_start; completion: what was delivered, counted
    const up = lastCall(s.anthropic, '/v1/messages').usage!;
    expect(charged).toBeGreaterThan(expectedCost({ ...up, completion_tokens: 0 }, CLAUDE_PRICE));
    expect(charged).toBeLessThan(expectedCost(up, CLAUDE_PRICE));
    expect(await s.held(userId)).toBe(0);
  });
});
