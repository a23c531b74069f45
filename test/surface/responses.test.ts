// POST /v1/responses and GET /v1/responses/{id} through the official `openai` client: native on
// the OpenAI provider, translated onto chat completions (OpenRouter) and onto Anthropic Messages.
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DATABASES } from '../helpers/db.js';
import {
  CLAUDE,
  CLAUDE_PRICE,
  expectedCost,
  GPT,
  GPT_PRICE,
  lastCall,
  OR_CLAUDE,
  OR_CLAUDE_PRICE,
  PNG_DATA_URL,
  type Surface,
  startSurface,
} from './anthropic-setup.js';

const FULL_TEXT = 'Hello from mock w4 w5 w6 w7 w8 w9 w10 w11 w12 ';
const WEATHER = {
  type: 'function' as const,
  name: 'get_weather',
  description: 'Weather for a city',
  parameters: { type: 'object', properties: { location: { type: 'string' } }, required: ['location'] },
  strict: false,
};

describe.each(DATABASES)('/v1/responses (%s)', (kind) => {
  let s: Surface;
  let client: OpenAI;
  let other: OpenAI;
  let apiKey: string;
  let userId: string;
  beforeAll(async () => {
    s = await startSurface(kind);
    const u = await s.g.createUser(10);
    apiKey = u.apiKey;
    userId = u.userId;
    client = new OpenAI({ apiKey, baseURL: s.g.v1, maxRetries: 0 });
    const o = await s.g.createUser(10);
    other = new OpenAI({ apiKey: o.apiKey, baseURL: s.g.v1, maxRetries: 0 });
  });
  afterAll(async () => {
    await s?.close();
  });

  describe('native (OpenAI provider has the Responses API)', () => {
    it('responses.create: passes through, bills the reported usage (cached input included)', async () => {
      const before = await s.balance(userId);
      s.openai.options.cachedTokens = 4;
      const r = await client.responses.create({
        model: GPT,
        instructions: 'Be brief.',
        input: 'say hello to me',
      });
      s.openai.options.cachedTokens = 0;
      expect(r.object).toBe('response');
      expect(r.status).toBe('completed');
      expect(r.output_text).toBe(FULL_TEXT);
      const up = lastCall(s.openai, '/v1/responses');
      expect(up.body.model).toBe('gpt-4o-mini');
      expect(up.body.instructions).toBe('Be brief.');
      expect(up.body.input).toEqual([{ type: 'message', role: 'user', content: 'say hello to me' }]);
      expect(r.usage!.input_tokens).toBe(up.usage!.prompt_tokens);
      expect(r.usage!.input_tokens_details.cached_tokens).toBe(4);
      const cost = expectedCost(up.usage!, GPT_PRICE);
      expect(before - (await s.balance(userId))).toBe(cost);
      expect((r as any).gateway_usage.cost_micros).toBe(cost);
    });

    it('responses.stream: typed events relayed; response.completed arrives after the charge', async () => {
      const before = await s.balance(userId);
      const stream = client.responses.stream({ model: GPT, input: 'stream it' });
      const types: string[] = [];
      let text = '';
      for await (const e of stream) {
        types.push(e.type);
        if (e.type === 'response.output_text.delta') text += e.delta;
      }
      const final = await stream.finalResponse();
      expect(text).toBe(FULL_TEXT);
      expect(types[0]).toBe('response.created');
      expect(types.at(-1)).toBe('response.completed');
      expect(final.output_text).toBe(FULL_TEXT);
      const up = lastCall(s.openai, '/v1/responses');
      expect(up.body.stream).toBe(true);
      expect(before - (await s.balance(userId))).toBe(expectedCost(up.usage!, GPT_PRICE));
      expect(await s.held(userId)).toBe(0);
      // stored as it came: retrievable by its id
      const got = await client.responses.retrieve(final.id);
      expect(got.id).toBe(final.id);
      expect(got.output_text ?? (got.output[0] as any).content[0].text).toBe(FULL_TEXT);
    });
  });

  describe('stored responses', () => {
    it('previous_response_id continues the conversation; GET is owner-only; store:false is not kept', async () => {
      const r1 = await client.responses.create({ model: OR_CLAUDE, input: 'first question here' });
      const got = await client.responses.retrieve(r1.id);
      expect(got.id).toBe(r1.id);
      expect(got.output_text).toBe(FULL_TEXT);
      const r2 = await client.responses.create({
        model: OR_CLAUDE,
        previous_response_id: r1.id,
        input: [{ role: 'user', content: 'second question' }],
      });
      expect(r2.previous_response_id).toBe(r1.id);
      expect(lastCall(s.openrouter, '/v1/chat/completions').body.messages).toEqual([
        { role: 'user', content: 'first question here' },
        { role: 'assistant', content: FULL_TEXT },
        { role: 'user', content: 'second question' },
      ]);
      // a chain of three carries both earlier turns, also across providers (native OpenAI here)
      await client.responses.create({ model: GPT, previous_response_id: r2.id, input: 'third' });
      expect(lastCall(s.openai, '/v1/responses').body.input).toEqual([
        { type: 'message', role: 'user', content: 'first question here' },
        { type: 'message', role: 'assistant', content: [{ type: 'output_text', text: FULL_TEXT }] },
        { role: 'user', content: 'second question' },
        { type: 'message', role: 'assistant', content: [{ type: 'output_text', text: FULL_TEXT }] },
        { type: 'message', role: 'user', content: 'third' },
      ]);
      expect(lastCall(s.openai, '/v1/responses').body.previous_response_id).toBeUndefined();

      // another user sees nothing and cannot chain onto it (and pays nothing)
      await expect(other.responses.retrieve(r1.id)).rejects.toBeInstanceOf(OpenAI.NotFoundError);
      const calls = s.openrouter.calls.length;
      await expect(
        other.responses.create({ model: OR_CLAUDE, previous_response_id: r1.id, input: 'steal' }),
      ).rejects.toMatchObject({ status: 404, param: 'previous_response_id' });
      expect(s.openrouter.calls.length).toBe(calls);

      const r3 = await client.responses.create({ model: OR_CLAUDE, input: 'ephemeral', store: false });
      await expect(client.responses.retrieve(r3.id)).rejects.toBeInstanceOf(OpenAI.NotFoundError);

      // delete: owner only, then gone
      await expect(other.responses.delete(r1.id)).rejects.toBeInstanceOf(OpenAI.NotFoundError);
      await client.responses.delete(r2.id);
      await expect(client.responses.retrieve(r2.id)).rejects.toBeInstanceOf(OpenAI.NotFoundError);
      await expect(client.responses.delete(r2.id)).rejects.toBeInstanceOf(OpenAI.NotFoundError);
      expect((await client.responses.retrieve(r1.id)).id).toBe(r1.id);
    });
  });

  describe('translated onto chat completions (OpenRouter)', () => {
    it('items, images, instructions, tools and text.format become a chat request; function_call comes back', async () => {
      const before = await s.balance(userId);
      const r = await client.responses.create({
        model: OR_CLAUDE,
        instructions: 'You are terse.',
        max_output_tokens: 200,
        input: [
          {
            role: 'user',
            content: [
              { type: 'input_text', text: 'What is in this image, and the weather?' },
              { type: 'input_image', image_url: PNG_DATA_URL, detail: 'low' },
            ],
          },
        ],
        tools: [WEATHER],
        tool_choice: 'required',
        text: {
          format: {
            type: 'json_schema',
            name: 'answer',
            schema: { type: 'object', properties: { a: { type: 'string' } } },
            strict: true,
          },
        },
      });
      const up = lastCall(s.openrouter, '/v1/chat/completions');
      expect(up.body.messages).toEqual([
        { role: 'system', content: 'You are terse.' },
        {
          role: 'user',
          content: [
            { type: 'text', text: 'What is in this image, and the weather?' },
            { type: 'image_url', image_url: { url: PNG_DATA_URL, detail: 'low' } },
          ],
        },
      ]);
      expect(up.body.max_tokens).toBe(200);
      expect(up.body.tool_choice).toBe('required');
      expect(up.body.tools).toEqual([
        {
          type: 'function',
          function: {
            name: 'get_weather',
            description: 'Weather for a city',
            parameters: WEATHER.parameters,
            strict: false,
          },
        },
      ]);
      expect(up.body.response_format).toEqual({
        type: 'json_schema',
        json_schema: {
          name: 'answer',
          schema: { type: 'object', properties: { a: { type: 'string' } } },
          strict: true,
        },
      });
      expect(r.id).toMatch(/^resp_/);
      expect(r.status).toBe('completed');
      expect(r.output).toHaveLength(1);
      const fc = r.output[0] as OpenAI.Responses.ResponseFunctionToolCall;
      expect(fc.type).toBe('function_call');
      expect(fc.name).toBe('get_weather');
      expect(fc.call_id).toMatch(/^call_/);
      expect(JSON.parse(fc.arguments)).toEqual({ location: 'Paris' });
      expect(r.usage!.input_tokens).toBe(up.usage!.prompt_tokens);
      expect(r.usage!.output_tokens).toBe(up.usage!.completion_tokens);
      expect(r.usage!.total_tokens).toBe(up.usage!.total_tokens);
      expect(before - (await s.balance(userId))).toBe(expectedCost(up.usage!, OR_CLAUDE_PRICE));

      // the tool result goes back as function_call_output → a tool message after the assistant's call
      await client.responses.create({
        model: OR_CLAUDE,
        previous_response_id: r.id,
        input: [{ type: 'function_call_output', call_id: fc.call_id, output: '{"temp":21}' }],
      });
      const msgs = lastCall(s.openrouter, '/v1/chat/completions').body.messages;
      expect(msgs.slice(-2)).toEqual([
        {
          role: 'assistant',
          content: null,
          tool_calls: [
            { id: fc.call_id, type: 'function', function: { name: 'get_weather', arguments: fc.arguments } },
          ],
        },
        { role: 'tool', tool_call_id: fc.call_id, content: '{"temp":21}' },
      ]);
      expect(msgs[0]).toEqual({
        role: 'user',
        content: [
          { type: 'text', text: 'What is in this image, and the weather?' },
          { type: 'image_url', image_url: { url: PNG_DATA_URL, detail: 'low' } },
        ],
      }); // instructions are not carried over from the previous response, as OpenAI does
    });

    it('max_output_tokens reached → status incomplete', async () => {
      const r = await client.responses.create({ model: OR_CLAUDE, input: 'hi', max_output_tokens: 2 });
      expect(r.status).toBe('incomplete');
      expect(r.incomplete_details).toEqual({ reason: 'max_output_tokens' });
      expect(r.output_text).toBe('Hello from ');
    });

    it('stream: chat chunks become the typed event sequence the client accumulates', async () => {
      const before = await s.balance(userId);
      const stream = client.responses.stream({
        model: OR_CLAUDE,
        instructions: 'Be brief.',
        input: 'stream it',
      });
      const types: string[] = [];
      const seqs: number[] = [];
      for await (const e of stream) {
        types.push(e.type);
        seqs.push(e.sequence_number);
      }
      const final = await stream.finalResponse();
      expect(types).toEqual([
        'response.created',
        'response.in_progress',
        'response.output_item.added',
        'response.content_part.added',
        'response.output_text.delta',
        'response.output_text.delta',
        'response.output_text.delta',
        'response.output_text.delta',
        'response.output_text.done',
        'response.content_part.done',
        'response.output_item.done',
        'response.completed',
      ]);
      expect(seqs).toEqual(seqs.map((_, i) => i));
      expect(final.output_text).toBe(FULL_TEXT);
      expect(final.status).toBe('completed');
      const up = lastCall(s.openrouter, '/v1/chat/completions');
      expect(up.body.stream_options).toEqual({ include_usage: true });
      expect(final.usage!.input_tokens).toBe(up.usage!.prompt_tokens);
      expect(before - (await s.balance(userId))).toBe(expectedCost(up.usage!, OR_CLAUDE_PRICE));
      const got = await client.responses.retrieve(final.id);
      expect(got.output_text).toBe(FULL_TEXT);
    });

    it('stream: tool calls become function_call items with argument deltas', async () => {
      const stream = client.responses.stream({ model: OR_CLAUDE, input: 'weather?', tools: [WEATHER] });
      let args = '';
      stream.on('response.function_call_arguments.delta', (e) => {
        args += e.delta;
      });
      const final = await stream.finalResponse();
      const fc = final.output[0] as OpenAI.Responses.ResponseFunctionToolCall;
      expect(fc.type).toBe('function_call');
      expect(fc.name).toBe('get_weather');
      expect(JSON.parse(fc.arguments)).toEqual({ location: 'Paris' });
      expect(args).toBe(fc.arguments);
    });
  });

  describe('translated onto Anthropic Messages', () => {
    it('create: instructions become system; Anthropic usage (cache included) billed exactly', async () => {
      const before = await s.balance(userId);
      s.anthropic.options.anthropicCache = { read: 6, write: 2 };
      const r = await client.responses.create({
        model: CLAUDE,
        instructions: 'Be brief.',
        input: 'hello claude',
      });
      s.anthropic.options.anthropicCache = undefined;
      const up = lastCall(s.anthropic, '/v1/messages');
      expect(up.body.system).toBe('Be brief.');
      expect(up.body.messages).toEqual([{ role: 'user', content: [{ type: 'text', text: 'hello claude' }] }]);
      expect(r.output_text).toBe(FULL_TEXT);
      expect(r.usage!.input_tokens).toBe(up.usage!.prompt_tokens);
      expect(r.usage!.input_tokens_details.cached_tokens).toBe(6);
      expect(before - (await s.balance(userId))).toBe(expectedCost(up.usage!, CLAUDE_PRICE));
    });

    it('stream: Anthropic events → chat chunks → Responses events', async () => {
      const before = await s.balance(userId);
      const stream = client.responses.stream({ model: CLAUDE, input: 'stream, claude' });
      let text = '';
      stream.on('response.output_text.delta', (e) => {
        text += e.delta;
      });
      const final = await stream.finalResponse();
      expect(text).toBe(FULL_TEXT);
      expect(final.output_text).toBe(FULL_TEXT);
      const up = lastCall(s.anthropic, '/v1/messages');
      expect(before - (await s.balance(userId))).toBe(expectedCost(up.usage!, CLAUDE_PRICE));
    });
  });

  describe('bad input → OpenAI error shape, no charge, no upstream call', () => {
    const post = (body: unknown) =>
      fetch(`${s.g.v1}/responses`, {
        method: 'POST',
        headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' },
        body: typeof body === 'string' ? body : JSON.stringify(body),
      });
    it.each([
      ['missing input', { model: GPT }, 400, 'input'],
      ['empty input list', { model: GPT, input: [] }, 400, 'input'],
      ['input not a string or list', { model: GPT, input: 5 }, 400, 'input'],
      ['max_output_tokens 0', { model: GPT, input: 'x', max_output_tokens: 0 }, 400, 'max_output_tokens'],
      [
        'unknown previous_response_id',
        { model: GPT, input: 'x', previous_response_id: 'resp_nope' },
        404,
        'previous_response_id',
      ],
      ['unknown model', { model: 'nope/nope', input: 'x' }, 404, 'model'],
      [
        'non-function tool on a translated model',
        { model: OR_CLAUDE, input: 'x', tools: [{ type: 'web_search' }] },
        400,
        'tools[0].type',
      ],
      [
        'unknown item type on a translated model',
        { model: OR_CLAUDE, input: [{ type: 'item_reference', id: 'x' }] },
        400,
        'input[0].type',
      ],
      ['not JSON', '{"model":', 400, null],
    ])('%s', async (_n, body, status, param) => {
      const before = await s.balance(userId);
      const calls = s.openai.calls.length + s.openrouter.calls.length + s.anthropic.calls.length;
      const res = await post(body);
      expect(res.status).toBe(status);
      const j = (await res.json()) as any;
      expect(typeof j.error.message).toBe('string');
      expect(j.error.type).toBeTruthy();
      if (param) expect(j.error.param).toBe(param);
      expect(await s.balance(userId)).toBe(before);
      expect(await s.held(userId)).toBe(0);
      expect(s.openai.calls.length + s.openrouter.calls.length + s.anthropic.calls.length).toBe(calls);
    });

    it('GET of an unknown id is 404 in OpenAI shape', async () => {
      const res = await fetch(`${s.g.v1}/responses/resp_unknown`, {
        headers: { authorization: `Bearer ${apiKey}` },
      });
      expect(res.status).toBe(404);
      expect(((await res.json()) as any).error.code).toBe('response_not_found');
    });
  });
});
