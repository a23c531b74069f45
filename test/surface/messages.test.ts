// POST /v1/messages: Anthropic's Messages API inbound, through the official @anthropic-ai/sdk.
// Native to the Anthropic provider; translated onto chat completions for OpenAI-shaped providers.
import Anthropic from '@anthropic-ai/sdk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DATABASES } from '../helpers/db.js';
import {
  CLAUDE,
  CLAUDE_PRICE,
  expectedCost,
  lastCall,
  OR_CLAUDE,
  OR_CLAUDE_PRICE,
  PNG_B64,
  PNG_DATA_URL,
  type Surface,
  startSurface,
} from './anthropic-setup.js';

const WEATHER_TOOL = {
  name: 'get_weather',
  description: 'Weather for a city',
  input_schema: {
    type: 'object' as const,
    properties: { location: { type: 'string' } },
    required: ['location'],
  },
};
const FULL_TEXT = 'Hello from mock w4 w5 w6 w7 w8 w9 w10 w11 w12 ';

describe.each(DATABASES)('/v1/messages (%s)', (kind) => {
  let s: Surface;
  let client: Anthropic;
  let apiKey: string;
  let userId: string;
  beforeAll(async () => {
    s = await startSurface(kind);
    const u = await s.g.createUser(10);
    apiKey = u.apiKey;
    userId = u.userId;
    client = new Anthropic({ apiKey, baseURL: s.g.url, maxRetries: 0 });
  });
  afterAll(async () => {
    await s?.close();
  });

  describe('native (Anthropic provider)', () => {
    it('messages.create passes through and bills Anthropic usage, cache reads and writes included', async () => {
      const before = await s.balance(userId);
      s.anthropic.options.anthropicCache = { read: 20, write: 8 };
      const m = await client.messages.create({
        model: 'claude-3-5-sonnet-20241022', // bare id, as Claude Code sends it
        max_tokens: 200,
        system: [{ type: 'text', text: 'You are terse.', cache_control: { type: 'ephemeral' } }],
        messages: [{ role: 'user', content: 'hello there' }],
      });
      s.anthropic.options.anthropicCache = undefined;
      expect(m.type).toBe('message');
      expect(m.content[0]).toEqual({ type: 'text', text: FULL_TEXT });
      expect(m.stop_reason).toBe('end_turn');
      expect(m.usage.cache_read_input_tokens).toBe(20);
      expect(m.usage.cache_creation_input_tokens).toBe(8);
      const up = lastCall(s.anthropic, '/v1/messages');
      expect(up.body.model).toBe('claude-3-5-sonnet-20241022');
      expect(up.body.system[0].cache_control).toEqual({ type: 'ephemeral' }); // untouched
      expect(up.usage!.prompt_tokens).toBe(m.usage.input_tokens + 28);
      const cost = expectedCost(up.usage!, CLAUDE_PRICE);
      expect(before - (await s.balance(userId))).toBe(cost);
      expect((m as any).gateway_usage.cost_micros).toBe(cost);
    });

    it('messages.stream relays Anthropic events; message_stop comes after the charge', async () => {
      const before = await s.balance(userId);
      s.anthropic.options.anthropicCache = { read: 4, write: 0 };
      const stream = client.messages.stream({
        model: CLAUDE,
        max_tokens: 100,
        messages: [{ role: 'user', content: 'stream please' }],
      });
      const types: string[] = [];
      stream.on('streamEvent', (e) => types.push(e.type));
      let text = '';
      stream.on('text', (t) => {
        text += t;
      });
      const final = await stream.finalMessage();
      s.anthropic.options.anthropicCache = undefined;
      expect(text).toBe(FULL_TEXT);
      expect(types[0]).toBe('message_start');
      expect(types.at(-1)).toBe('message_stop');
      expect(final.stop_reason).toBe('end_turn');
      const up = lastCall(s.anthropic, '/v1/messages');
      expect(final.usage.output_tokens).toBe(up.usage!.completion_tokens);
      expect(before - (await s.balance(userId))).toBe(expectedCost(up.usage!, CLAUDE_PRICE));
      expect(await s.held(userId)).toBe(0);
    });

    it('accepts x-api-key as well as Bearer, and forwards anthropic-beta', async () => {
      const res = await fetch(`${s.g.url}/v1/messages`, {
        method: 'POST',
        headers: {
          'x-api-key': apiKey,
          'anthropic-version': '2023-06-01',
          'anthropic-beta': 'prompt-caching-2024-07-31',
          'content-type': 'application/json',
        },
        body: JSON.stringify({ model: CLAUDE, max_tokens: 10, messages: [{ role: 'user', content: 'hi' }] }),
      });
      expect(res.status).toBe(200);
      expect(lastCall(s.anthropic, '/v1/messages').headers['anthropic-beta']).toBe(
        'prompt-caching-2024-07-31',
      );
      const j = (await res.json()) as any;
      expect(j.stop_reason).toBe('max_tokens');
    });
  });

  describe('translated (OpenAI-shaped provider)', () => {
    it('system, images, tool_use and tool_result become chat messages; the answer comes back as a message', async () => {
      const before = await s.balance(userId);
      const m = await client.messages.create({
        model: OR_CLAUDE,
        max_tokens: 300,
        system: 'You are terse.',
        stop_sequences: ['never-appears'],
        messages: [
          {
            role: 'user',
            content: [
              { type: 'text', text: 'What is this and the weather?' },
              { type: 'image', source: { type: 'base64', media_type: 'image/png', data: PNG_B64 } },
              { type: 'image', source: { type: 'url', url: 'https://example.com/cat.png' } },
            ],
          },
          {
            role: 'assistant',
            content: [
              { type: 'text', text: 'Let me check.' },
              { type: 'tool_use', id: 'toolu_1', name: 'get_weather', input: { location: 'Rome' } },
            ],
          },
          {
            role: 'user',
            content: [
              { type: 'tool_result', tool_use_id: 'toolu_1', content: 'sunny' },
              { type: 'text', text: 'And Paris?' },
            ],
          },
        ],
        tools: [WEATHER_TOOL],
        tool_choice: { type: 'any' },
      });
      const up = lastCall(s.openrouter, '/v1/chat/completions');
      expect(up.body.model).toBe(OR_CLAUDE);
      expect(up.body.max_tokens).toBe(300);
      expect(up.body.stop).toEqual(['never-appears']);
      expect(up.body.tool_choice).toBe('required');
      expect(up.body.tools).toEqual([
        {
          type: 'function',
          function: {
            name: 'get_weather',
            description: 'Weather for a city',
            parameters: WEATHER_TOOL.input_schema,
          },
        },
      ]);
      expect(up.body.messages).toEqual([
        { role: 'system', content: 'You are terse.' },
        {
          role: 'user',
          content: [
            { type: 'text', text: 'What is this and the weather?' },
            { type: 'image_url', image_url: { url: PNG_DATA_URL } },
            { type: 'image_url', image_url: { url: 'https://example.com/cat.png' } },
          ],
        },
        {
          role: 'assistant',
          content: 'Let me check.',
          tool_calls: [
            {
              id: 'toolu_1',
              type: 'function',
              function: { name: 'get_weather', arguments: '{"location":"Rome"}' },
            },
          ],
        },
        { role: 'tool', tool_call_id: 'toolu_1', content: 'sunny' },
        { role: 'user', content: 'And Paris?' },
      ]);
      expect(m.stop_reason).toBe('tool_use');
      expect(m.content).toHaveLength(1);
      const block = m.content[0] as Anthropic.ToolUseBlock;
      expect(block.type).toBe('tool_use');
      expect(block.name).toBe('get_weather');
      expect(block.input).toEqual({ location: 'Paris' });
      expect(m.usage.input_tokens).toBe(up.usage!.prompt_tokens);
      expect(m.usage.output_tokens).toBe(up.usage!.completion_tokens);
      expect(before - (await s.balance(userId))).toBe(expectedCost(up.usage!, OR_CLAUDE_PRICE));
    });

    it('maps stop reasons back: length → max_tokens, stop → end_turn', async () => {
      const short = await client.messages.create({
        model: OR_CLAUDE,
        max_tokens: 2,
        messages: [{ role: 'user', content: 'hi' }],
      });
      expect(short.stop_reason).toBe('max_tokens');
      expect(short.content).toEqual([{ type: 'text', text: 'Hello from ' }]);
      const full = await client.messages.create({
        model: OR_CLAUDE,
        max_tokens: 100,
        messages: [{ role: 'user', content: 'hi' }],
      });
      expect(full.stop_reason).toBe('end_turn');
      expect(full.id).toMatch(/^msg_/);
      expect(full.role).toBe('assistant');
    });

    it('streams chat chunks back as Anthropic events (text)', async () => {
      const before = await s.balance(userId);
      const stream = client.messages.stream({
        model: OR_CLAUDE,
        max_tokens: 100,
        system: 'Be brief.',
        messages: [{ role: 'user', content: 'stream please' }],
      });
      const types: string[] = [];
      stream.on('streamEvent', (e) => types.push(e.type));
      const final = await stream.finalMessage();
      const up = lastCall(s.openrouter, '/v1/chat/completions');
      expect(up.body.stream).toBe(true);
      expect(up.body.stream_options).toEqual({ include_usage: true });
      expect(up.body.messages[0]).toEqual({ role: 'system', content: 'Be brief.' });
      expect(types[0]).toBe('message_start');
      expect(types.slice(-3)).toEqual(['content_block_stop', 'message_delta', 'message_stop']);
      expect(final.content).toHaveLength(1);
      expect(final.content[0]).toMatchObject({ type: 'text', text: FULL_TEXT });
      expect(final.stop_reason).toBe('end_turn');
      expect(final.usage.output_tokens).toBe(up.usage!.completion_tokens);
      expect(final.usage.input_tokens).toBe(up.usage!.prompt_tokens);
      expect(before - (await s.balance(userId))).toBe(expectedCost(up.usage!, OR_CLAUDE_PRICE));
    });

    it('streams tool calls back as tool_use blocks with input_json deltas', async () => {
      const stream = client.messages.stream({
        model: OR_CLAUDE,
        max_tokens: 100,
        messages: [{ role: 'user', content: 'weather?' }],
        tools: [WEATHER_TOOL],
      });
      let json = '';
      stream.on('inputJson', (delta) => {
        json += delta;
      });
      const final = await stream.finalMessage();
      expect(final.stop_reason).toBe('tool_use');
      const block = final.content.find((b) => b.type === 'tool_use') as Anthropic.ToolUseBlock;
      expect(block.name).toBe('get_weather');
      expect(block.input).toEqual({ location: 'Paris' });
      expect(JSON.parse(json)).toEqual({ location: 'Paris' });
    });
  });

  it('count_tokens is answered locally: no provider call, no charge', async () => {
    const before = await s.balance(userId);
    const calls = s.anthropic.calls.length + s.openrouter.calls.length;
    const small = await client.messages.countTokens({
      model: CLAUDE,
      messages: [{ role: 'user', content: 'hi' }],
    });
    const big = await client.messages.countTokens({
      model: CLAUDE,
      system: 'You are a very careful assistant.',
      messages: [{ role: 'user', content: 'hi '.repeat(200) }],
      tools: [WEATHER_TOOL],
    });
    expect(small.input_tokens).toBeGreaterThan(0);
    expect(big.input_tokens).toBeGreaterThan(small.input_tokens + 200);
    expect(s.anthropic.calls.length + s.openrouter.calls.length).toBe(calls);
    expect(await s.balance(userId)).toBe(before);
    const bad = await fetch(`${s.g.url}/v1/messages/count_tokens`, {
      method: 'POST',
      headers: { 'x-api-key': apiKey, 'content-type': 'application/json' },
      body: JSON.stringify({ model: CLAUDE }),
    });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as any).error.type).toBe('invalid_request_error');
  });

  it('a client that goes away mid-stream is charged for what was delivered; the hold is released', async () => {
    const before = await s.balance(userId);
    s.openrouter.options.chunkIntervalMs = 60;
    const ac = new AbortController();
    const res = await fetch(`${s.g.url}/v1/messages`, {
      method: 'POST',
      headers: { 'x-api-key': apiKey, 'content-type': 'application/json' },
      body: JSON.stringify({
        model: OR_CLAUDE,
        max_tokens: 100,
        stream: true,
        messages: [{ role: 'user', content: 'hi' }],
      }),
      signal: ac.signal,
    });
    const reader = res.body!.getReader();
    let seen = '';
    while (!seen.includes('text_delta')) seen += new TextDecoder().decode((await reader.read()).value);
    ac.abort();
    s.openrouter.options.chunkIntervalMs = 0;
    let charged = 0;
    for (let i = 0; i < 100 && (charged === 0 || (await s.held(userId)) > 0); i++) {
      await new Promise((r) => setTimeout(r, 20));
      charged = before - (await s.balance(userId));
    }
    const full = expectedCost(lastCall(s.openrouter, '/v1/chat/completions').usage!, OR_CLAUDE_PRICE);
    expect(charged).toBeGreaterThan(0);
    expect(charged).toBeLessThan(full);
    expect(await s.held(userId)).toBe(0);
  });

  describe('errors in Anthropic shape, no charge', () => {
    const post = (body: unknown, headers: Record<string, string> = {}) =>
      fetch(`${s.g.url}/v1/messages`, {
        method: 'POST',
        headers: { 'x-api-key': apiKey, 'content-type': 'application/json', ...headers },
        body: typeof body === 'string' ? body : JSON.stringify(body),
      });

    it.each([
      [
        'missing max_tokens',
        { model: CLAUDE, messages: [{ role: 'user', content: 'hi' }] },
        400,
        'invalid_request_error',
      ],
      ['empty messages', { model: CLAUDE, max_tokens: 5, messages: [] }, 400, 'invalid_request_error'],
      [
        'bad role',
        { model: CLAUDE, max_tokens: 5, messages: [{ role: 'system', content: 'x' }] },
        400,
        'invalid_request_error',
      ],
      [
        'max_tokens 0',
        { model: CLAUDE, max_tokens: 0, messages: [{ role: 'user', content: 'x' }] },
        400,
        'invalid_request_error',
      ],
      ['not JSON', '{"model":', 400, 'invalid_request_error'],
      [
        'unknown model',
        { model: 'anthropic/nope', max_tokens: 5, messages: [{ role: 'user', content: 'x' }] },
        404,
        'not_found_error',
      ],
    ])('%s', async (_name, body, status, type) => {
      const before = await s.balance(userId);
      const calls = s.anthropic.calls.length + s.openrouter.calls.length;
      const res = await post(body);
      expect(res.status).toBe(status);
      const j = (await res.json()) as any;
      expect(j.type).toBe('error');
      expect(j.error.type).toBe(type);
      expect(typeof j.error.message).toBe('string');
      expect(await s.balance(userId)).toBe(before);
      expect(s.anthropic.calls.length + s.openrouter.calls.length).toBe(calls);
    });

    it('a bad key is an authentication_error; the SDK raises AuthenticationError', async () => {
      const res = await post(
        { model: CLAUDE, max_tokens: 5, messages: [{ role: 'user', content: 'x' }] },
        {
          'x-api-key': 'gw_live_wrong',
        },
      );
      expect(res.status).toBe(401);
      expect(((await res.json()) as any).error.type).toBe('authentication_error');
      const bad = new Anthropic({ apiKey: 'gw_live_wrong', baseURL: s.g.url, maxRetries: 0 });
      await expect(
        bad.messages.create({ model: CLAUDE, max_tokens: 5, messages: [{ role: 'user', content: 'x' }] }),
      ).rejects.toBeInstanceOf(Anthropic.AuthenticationError);
    });

    it('an upstream failure is an Anthropic-shaped error and costs nothing', async () => {
      const before = await s.balance(userId);
      s.anthropic.faults.push({ type: 'status', status: 400 });
      const res = await post({ model: CLAUDE, max_tokens: 5, messages: [{ role: 'user', content: 'x' }] });
      expect(res.status).toBe(400);
      expect(((await res.json()) as any).type).toBe('error');
      expect(await s.balance(userId)).toBe(before);
      expect(await s.held(userId)).toBe(0);
    });

    it('insufficient credits is a billing_error before any upstream call', async () => {
      const poor = await s.g.createUser(0);
      const calls = s.anthropic.calls.length;
      const res = await fetch(`${s.g.url}/v1/messages`, {
        method: 'POST',
        headers: { 'x-api-key': poor.apiKey, 'content-type': 'application/json' },
        body: JSON.stringify({ model: CLAUDE, max_tokens: 5, messages: [{ role: 'user', content: 'x' }] }),
      });
      expect(res.status).toBe(402);
      expect(((await res.json()) as any).error.type).toBe('billing_error');
      expect(s.anthropic.calls.length).toBe(calls);
    });
  });
});
