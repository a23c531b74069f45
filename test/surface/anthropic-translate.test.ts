// Anthropic ⇄ OpenAI translation, both directions, on the pure functions (no network): requests,
// answers, stop reasons, usage (Anthropic's input_tokens excludes cache tokens) and streamed events.
import { describe, expect, it } from 'vitest';
import { parseEvent } from '../../src/inference/sse.js';
import { composeCodec, openAiChunkDecoder } from '../../src/inference/translated-stream.js';
import { anthropicToChatRequest, chatToAnthropicRequest } from '../../src/providers/anthropic/request.js';
import {
  anthropicToChatCompletion,
  chatCompletionToAnthropic,
} from '../../src/providers/anthropic/response.js';
import { anthropicChunkDecoder, anthropicEventEncoder } from '../../src/providers/anthropic/stream.js';
import { anthropicUsageOf, parseAnthropicUsage } from '../../src/providers/anthropic/usage.js';

const ev = (type: string, data: Record<string, unknown>) =>
  parseEvent(`event: ${type}\ndata: ${JSON.stringify({ type, ...data })}\n\n`);
const chunkEv = (j: unknown) => parseEvent(`data: ${JSON.stringify(j)}\n\n`);
const sse = (text: string) =>
  text
    .split('\n\n')
    .filter(Boolean)
    .map((raw) => {
      const e = parseEvent(`${raw}\n\n`);
      return { event: e.event, data: JSON.parse(e.data!) };
    });

describe('requests', () => {
  it('chat → Messages: system/developer joined, consecutive tool results merged into one user turn', () => {
    const out = chatToAnthropicRequest(
      {
        messages: [
          { role: 'system', content: 'A' },
          { role: 'developer', content: [{ type: 'text', text: 'B' }] },
          { role: 'user', content: 'weather in Rome and Paris?' },
          {
            role: 'assistant',
            content: 'checking',
            tool_calls: [
              { id: 't1', type: 'function', function: { name: 'w', arguments: '{"l":"Rome"}' } },
              { id: 't2', type: 'function', function: { name: 'w', arguments: '' } },
            ],
          },
          { role: 'tool', tool_call_id: 't1', content: 'sunny' },
          { role: 'tool', tool_call_id: 't2', content: [{ type: 'text', text: 'rain' }] },
        ],
        tools: [{ type: 'function', function: { name: 'w', parameters: { type: 'object' } } }],
        tool_choice: { type: 'function', function: { name: 'w' } },
        parallel_tool_calls: false,
        stop: 'END',
        user: 'u-1',
        temperature: 1.7,
      },
      'claude-x',
      99,
    );
    expect(out.system).toBe('A\n\nB');
    expect(out.max_tokens).toBe(99);
    expect(out.stop_sequences).toEqual(['END']);
    expect(out.metadata).toEqual({ user_id: 'u-1' });
    expect(out.temperature).toBe(1); // Anthropic's range is 0..1
    expect(out.tool_choice).toEqual({ type: 'tool', name: 'w', disable_parallel_tool_use: true });
    expect(out.messages).toEqual([
      { role: 'user', content: [{ type: 'text', text: 'weather in Rome and Paris?' }] },
      {
        role: 'assistant',
        content: [
          { type: 'text', text: 'checking' },
          { type: 'tool_use', id: 't1', name: 'w', input: { l: 'Rome' } },
          { type: 'tool_use', id: 't2', name: 'w', input: {} },
        ],
      },
      {
        role: 'user',
        content: [
          { type: 'tool_result', tool_use_id: 't1', content: 'sunny' },
          { type: 'tool_result', tool_use_id: 't2', content: 'rain' },
        ],
      },
    ]);
  });

  it('Messages → chat: system blocks, tool_result errors and images inside tool results', () => {
    const out = anthropicToChatRequest(
      {
        system: [
          { type: 'text', text: 'S1' },
          { type: 'text', text: 'S2' },
        ],
        messages: [
          { role: 'user', content: 'go' },
          { role: 'assistant', content: [{ type: 'tool_use', id: 'x', name: 'shot', input: {} }] },
          {
            role: 'user',
            content: [
              {
                type: 'tool_result',
                tool_use_id: 'x',
                is_error: true,
                content: [
                  { type: 'text', text: 'failed' },
                  { type: 'image', source: { type: 'base64', media_type: 'image/jpeg', data: 'AAA' } },
                ],
              },
            ],
          },
        ],
        tool_choice: { type: 'auto', disable_parallel_tool_use: true },
        tools: [{ name: 'shot', input_schema: { type: 'object' } }],
        stream: true,
        metadata: { user_id: 'u' },
      },
      'gpt-x',
      50,
    );
    expect(out.messages).toEqual([
      { role: 'system', content: 'S1\nS2' },
      { role: 'user', content: 'go' },
      {
        role: 'assistant',
        content: null,
        tool_calls: [{ id: 'x', type: 'function', function: { name: 'shot', arguments: '{}' } }],
      },
      { role: 'tool', tool_call_id: 'x', content: '[error] failed' },
      { role: 'user', content: [{ type: 'image_url', image_url: { url: 'data:image/jpeg;base64,AAA' } }] },
    ]);
    expect(out.tool_choice).toBe('auto');
    expect(out.parallel_tool_calls).toBe(false);
    expect(out.stream_options).toEqual({ include_usage: true });
    expect(out.user).toBe('u');
    expect(out.max_tokens).toBe(50);
  });
});

describe('answers and usage', () => {
  it("usage: Anthropic's input_tokens excludes cache reads and writes; our prompt total includes them", () => {
    const u = parseAnthropicUsage({
      input_tokens: 10,
      output_tokens: 5,
      cache_read_input_tokens: 100,
      cache_creation_input_tokens: 20,
    })!;
    expect(u).toMatchObject({
      promptTokens: 130,
      completionTokens: 5,
      cachedTokens: 100,
      cacheWriteTokens: 20,
    });
    expect(anthropicUsageOf(u)).toEqual({
      input_tokens: 10,
      output_tokens: 5,
      cache_read_input_tokens: 100,
      cache_creation_input_tokens: 20,
    });
    expect(parseAnthropicUsage({ input_tokens: -1, output_tokens: 5 })).toBeNull();
    expect(parseAnthropicUsage({ input_tokens: 1.5, output_tokens: 5 })).toBeNull();
  });

  it.each([
    ['end_turn', 'stop'],
    ['stop_sequence', 'stop'],
    ['max_tokens', 'length'],
    ['tool_use', 'tool_calls'],
    ['refusal', 'content_filter'],
  ])('message stop_reason %s → finish_reason %s', (stop, finish) => {
    const c = anthropicToChatCompletion(
      { id: 'm', content: [{ type: 'text', text: 'x' }], stop_reason: stop },
      'a/b',
      null,
    );
    expect(c.choices[0].finish_reason).toBe(finish);
  });

  it.each([
    ['stop', 'end_turn'],
    ['length', 'max_tokens'],
    ['tool_calls', 'tool_use'],
    ['content_filter', 'refusal'],
  ])('chat finish_reason %s → stop_reason %s', (finish, stop) => {
    const u = {
      promptTokens: 3,
      completionTokens: 1,
      cachedTokens: 0,
      cacheWriteTokens: 0,
      reasoningTokens: 0,
      units: 0,
    };
    const m = chatCompletionToAnthropic(
      { id: 'chatcmpl-1', choices: [{ message: { content: 'x' }, finish_reason: finish }] },
      'm',
      u,
    );
    expect(m.stop_reason).toBe(stop);
  });

  it('tool_use + thinking blocks ⇄ tool_calls + reasoning', () => {
    const c = anthropicToChatCompletion(
      {
        id: 'msg_1',
        content: [
          { type: 'thinking', thinking: 'hmm' },
          { type: 'text', text: 'Let me look.' },
          { type: 'tool_use', id: 'toolu_1', name: 'w', input: { l: 'Paris' } },
        ],
        stop_reason: 'tool_use',
      },
      'anthropic/c',
      null,
    );
    expect(c.choices[0].message).toEqual({
      role: 'assistant',
      content: 'Let me look.',
      reasoning: 'hmm',
      tool_calls: [{ id: 'toolu_1', type: 'function', function: { name: 'w', arguments: '{"l":"Paris"}' } }],
    });
    const u = {
      promptTokens: 3,
      completionTokens: 1,
      cachedTokens: 0,
      cacheWriteTokens: 0,
      reasoningTokens: 0,
      units: 0,
    };
    const back = chatCompletionToAnthropic(c, 'anthropic/c', u);
    expect(back.content).toEqual([
      { type: 'thinking', thinking: 'hmm', signature: '' },
      { type: 'text', text: 'Let me look.' },
      { type: 'tool_use', id: 'toolu_1', name: 'w', input: { l: 'Paris' } },
    ]);
    expect(back.stop_reason).toBe('tool_use');
  });
});

describe('streamed events', () => {
  const anthropicEvents = [
    ev('message_start', {
      message: {
        id: 'msg_9',
        usage: {
          input_tokens: 10,
          cache_read_input_tokens: 4,
          cache_creation_input_tokens: 2,
          output_tokens: 1,
        },
      },
    }),
    ev('content_block_start', { index: 0, content_block: { type: 'text', text: '' } }),
    ev('ping', {}),
    ev('content_block_delta', { index: 0, delta: { type: 'text_delta', text: 'Hi ' } }),
    ev('content_block_stop', { index: 0 }),
    ev('content_block_start', {
      index: 1,
      content_block: { type: 'tool_use', id: 'toolu_9', name: 'w', input: {} },
    }),
    ev('content_block_delta', { index: 1, delta: { type: 'input_json_delta', partial_json: '{"l":' } }),
    ev('content_block_delta', { index: 1, delta: { type: 'input_json_delta', partial_json: '"Paris"}' } }),
    ev('content_block_stop', { index: 1 }),
    ev('message_delta', { delta: { stop_reason: 'tool_use' }, usage: { output_tokens: 7 } }),
    ev('message_stop', {}),
  ];

  it('Anthropic events → chat chunks: role, text, indexed tool call, finish, usage with cache', () => {
    const d = anthropicChunkDecoder('anthropic/c');
    const chunks = anthropicEvents.flatMap((e) => d.decode(e).chunks);
    const deltas = chunks.filter((c) => c.choices.length).map((c) => c.choices[0]);
    expect(deltas[0].delta).toEqual({ role: 'assistant', content: '' });
    expect(deltas[1].delta).toEqual({ content: 'Hi ' });
    expect(deltas[2].delta.tool_calls).toEqual([
      { index: 0, id: 'toolu_9', type: 'function', function: { name: 'w', arguments: '' } },
    ]);
    expect(
      deltas
        .slice(3, 5)
        .map((x) => x.delta.tool_calls[0].function.arguments)
        .join(''),
    ).toBe('{"l":"Paris"}');
    expect(deltas.at(-1).finish_reason).toBe('tool_calls');
    const last = chunks.at(-1)!;
    expect(last.choices).toEqual([]);
    expect(last.usage).toMatchObject({ prompt_tokens: 16, completion_tokens: 7 });
    expect(last.usage.prompt_tokens_details).toEqual({ cached_tokens: 4, cache_write_tokens: 2 });
    expect(d.usage!()).toMatchObject({
      promptTokens: 16,
      completionTokens: 7,
      cachedTokens: 4,
      cacheWriteTokens: 2,
    });
  });

  it('a cut-off Anthropic stream reports only its prompt side as exact', () => {
    const d = anthropicChunkDecoder('anthropic/c');
    for (const e of anthropicEvents.slice(0, 4)) d.decode(e);
    expect(d.usage!()).toBeNull();
    expect(d.promptUsage!()).toMatchObject({ promptTokens: 16, completionTokens: 0, cachedTokens: 4 });
  });

  it('chat chunks → Anthropic events: blocks opened and closed in order, terminal events after settle', async () => {
    const codec = composeCodec(openAiChunkDecoder(), anthropicEventEncoder('gpt-x'));
    const base = { id: 'c', object: 'chat.completion.chunk', created: 1, model: 'gpt-x' };
    let out = '';
    for (const delta of [
      { role: 'assistant', content: '' },
      { reasoning: 'think' },
      { content: 'Hi ' },
      { content: 'there' },
      { tool_calls: [{ index: 0, id: 'call_1', type: 'function', function: { name: 'w', arguments: '' } }] },
      { tool_calls: [{ index: 0, function: { arguments: '{"l":1}' } }] },
      {
        tool_calls: [{ index: 1, id: 'call_2', type: 'function', function: { name: 'v', arguments: '{}' } }],
      },
    ])
      out += codec.push(chunkEv({ ...base, choices: [{ index: 0, delta, finish_reason: null }] }));
    out += codec.push(chunkEv({ ...base, choices: [{ index: 0, delta: {}, finish_reason: 'tool_calls' }] }));
    out += codec.push(
      chunkEv({
        ...base,
        choices: [],
        usage: { prompt_tokens: 20, completion_tokens: 9, prompt_tokens_details: { cached_tokens: 5 } },
      }),
    );
    out += codec.push(parseEvent('data: [DONE]\n\n'));
    expect(codec.done).toBe(true);
    const usage = codec.usage()!;
    expect(usage).toMatchObject({ promptTokens: 20, completionTokens: 9, cachedTokens: 5 });
    expect(out).not.toContain('message_stop'); // held back until settled
    out += await codec.finish(usage);
    const events = sse(out);
    expect(events.every((e) => e.event === e.data.type)).toBe(true);
    expect(events.map((e) => e.data.type)).toEqual([
      'message_start',
      'content_block_start',
      'content_block_delta',
      'content_block_stop',
      'content_block_start',
      'content_block_delta',
      'content_block_delta',
      'content_block_stop',
      'content_block_start',
      'content_block_delta',
      'content_block_stop',
      'content_block_start',
      'content_block_delta',
      'content_block_stop',
      'message_delta',
      'message_stop',
    ]);
    const starts = events.filter((e) => e.data.type === 'content_block_start').map((e) => e.data);
    expect(starts.map((s) => [s.index, s.content_block.type])).toEqual([
      [0, 'thinking'],
      [1, 'text'],
      [2, 'tool_use'],
      [3, 'tool_use'],
    ]);
    expect(starts[2].content_block).toEqual({ type: 'tool_use', id: 'call_1', name: 'w', input: {} });
    const md = events.find((e) => e.data.type === 'message_delta')!.data;
    expect(md.delta.stop_reason).toBe('tool_use');
    expect(md.usage).toEqual({
      input_tokens: 15,
      output_tokens: 9,
      cache_read_input_tokens: 5,
      cache_creation_input_tokens: 0,
    });
  });

  it('round trip Anthropic → chat → Anthropic keeps text, tool input and stop reason', async () => {
    const d = anthropicChunkDecoder('anthropic/c');
    const codec = composeCodec(openAiChunkDecoder(), anthropicEventEncoder('anthropic/c'));
    let out = '';
    for (const e of anthropicEvents) for (const c of d.decode(e).chunks) out += codec.push(chunkEv(c));
    codec.push(parseEvent('data: [DONE]\n\n'));
    out += await codec.finish(codec.usage()!);
    const events = sse(out).map((e) => e.data);
    const text = events
      .filter((e) => e.delta?.type === 'text_delta')
      .map((e) => e.delta.text)
      .join('');
    const json = events
      .filter((e) => e.delta?.type === 'input_json_delta')
      .map((e) => e.delta.partial_json)
      .join('');
    expect(text).toBe('Hi ');
    expect(JSON.parse(json)).toEqual({ l: 'Paris' });
    const md = events.find((e) => e.type === 'message_delta');
    expect(md.delta.stop_reason).toBe('tool_use');
    expect(md.usage).toEqual({
      input_tokens: 10,
      output_tokens: 7,
      cache_read_input_tokens: 4,
      cache_creation_input_tokens: 2,
    });
  });
});
