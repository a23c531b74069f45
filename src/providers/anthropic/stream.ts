import type { Usage } from '../../billing/cost.js';
import type { SseEvent } from '../../inference/sse.js';
import type { ChunkDecoder, ChunkEncoder, StreamCodec } from '../../inference/translated-stream.js';
import { newId } from '../../lib/ids.js';
import { finishReasonOf, JSON_RESPONSE_TOOL, stopReasonOf } from './request.js';
import { type AnthropicUsage, anthropicUsageOf, mergeAnthropicUsage, usageFromAnthropic } from './usage.js';

type Obj = Record<string, any>;

/** One Anthropic SSE event (`event: <type>` + JSON data). */
export const anthropicEvent = (data: Obj): string => `event: ${data.type}\ndata: ${JSON.stringify(data)}\n\n`;

const parse = (e: SseEvent): Obj | null => {
  if (e.data === null) return null;
  try {
    const j = JSON.parse(e.data);
    return j && typeof j === 'object' ? j : null;
  } catch {
    return null;
  }
};

/**
 * Anthropic's event stream → OpenAI chat chunks (tool_use blocks become indexed tool_calls; with
 * `jsonTool`, the forced JSON_RESPONSE_TOOL's input streams as content).
 */
export function anthropicChunkDecoder(model: string, jsonTool = false): ChunkDecoder {
  let id = `chatcmpl-${newId('msg')}`;
  const created = Math.floor(Date.now() / 1000);
  const acc: Partial<AnthropicUsage> = {};
  let usageOk = true;
  let final = false;
  const toolIndex = new Map<number, number>();
  const jsonBlocks = new Set<number>();
  const chunk = (delta: Obj, finish: string | null = null): Obj => ({
    id,
    object: 'chat.completion.chunk',
    created,
    model,
    choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }],
  });
  return {
    // message_start's output_tokens is a placeholder: the counts are final only with message_delta.
    usage: () => (usageOk && final ? usageFromAnthropic(acc) : null),
    promptUsage: () => (usageOk ? usageFromAnthropic({ ...acc, output_tokens: 0 }) : null),
    decode(e) {
      const j = parse(e);
      if (!j) return { chunks: [] };
      switch (j.type) {
        case 'message_start':
          if (typeof j.message?.id === 'string') id = `chatcmpl-${j.message.id}`;
          if (j.message?.usage && !mergeAnthropicUsage(acc, j.message.usage)) usageOk = false;
          return { chunks: [chunk({ role: 'assistant', content: '' })] };
        case 'content_block_start': {
          const b = j.content_block ?? {};
          if (jsonTool && b.type === 'tool_use' && b.name === JSON_RESPONSE_TOOL) {
            jsonBlocks.add(j.index);
            return { chunks: [] };
          }
          if (b.type === 'tool_use') {
            const t = toolIndex.size;
            toolIndex.set(j.index, t);
            return {
              chunks: [
                chunk({
                  tool_calls: [
                    { index: t, id: b.id, type: 'function', function: { name: b.name, arguments: '' } },
                  ],
                }),
              ],
            };
          }
          if (b.type === 'text' && b.text) return { chunks: [chunk({ content: b.text })] };
          return { chunks: [] };
        }
        case 'content_block_delta': {
          const d = j.delta ?? {};
          if (d.type === 'text_delta') return { chunks: [chunk({ content: d.text })] };
          if (d.type === 'thinking_delta') return { chunks: [chunk({ reasoning: d.thinking })] };
          if (d.type === 'input_json_delta' && d.partial_json && jsonBlocks.has(j.index))
            return { chunks: [chunk({ content: d.partial_json })] };
          if (d.type === 'input_json_delta' && d.partial_json) {
            const t = toolIndex.get(j.index) ?? 0;
            return {
              chunks: [chunk({ tool_calls: [{ index: t, function: { arguments: d.partial_json } }] })],
            };
          }
          return { chunks: [] };
        }
        case 'message_delta': {
          if (j.usage) {
            if (!mergeAnthropicUsage(acc, j.usage)) usageOk = false;
            final = true;
          }
          const stop = j.delta?.stop_reason;
          const f = jsonTool && stop === 'tool_use' && toolIndex.size === 0 ? 'stop' : finishReasonOf(stop);
          return { chunks: f ? [chunk({}, f)] : [] };
        }
        case 'message_stop': {
          const u = usageOk && final ? usageFromAnthropic(acc) : null;
          const last: Obj[] = u
            ? [
                {
                  id,
                  object: 'chat.completion.chunk',
                  created,
                  model,
                  choices: [],
                  usage: {
                    prompt_tokens: u.promptTokens,
                    completion_tokens: u.completionTokens,
                    total_tokens: u.promptTokens + u.completionTokens,
                    prompt_tokens_details: {
                      cached_tokens: u.cachedTokens,
                      cache_write_tokens: u.cacheWriteTokens,
                    },
                  },
                },
              ]
            : [];
          return { chunks: last, done: true };
        }
        case 'error':
          return {
            chunks: [],
            error: {
              message: j.error?.message ?? 'upstream error',
              type: j.error?.type ?? 'upstream_error',
              code: 'upstream_stream_error',
              param: null,
            },
          };
        default:
          return { chunks: [] }; // ping and future event types
      }
    },
  };
}

/** OpenAI chat chunks → Anthropic's event sequence (message_start … message_stop). */
export function anthropicEventEncoder(model: string): ChunkEncoder {
  const id = newId('msg').replace('msg_', 'msg_gw');
  let started = false;
  let block: { index: number; kind: 'text' | 'thinking' | 'tool'; tool?: number } | null = null;
  let next = 0;
  let stop: string | null = null;
  const start = (): string => {
    if (started) return '';
    started = true;
    return anthropicEvent({
      type: 'message_start',
      message: {
        id,
        type: 'message',
        role: 'assistant',
        model,
        content: [],
        stop_reason: null,
        stop_sequence: null,
        usage: { input_tokens: 0, output_tokens: 0 },
      },
    });
  };
  const close = (): string => {
    if (!block) return '';
    const s = anthropicEvent({ type: 'content_block_stop', index: block.index });
    block = null;
    return s;
  };
  const open = (kind: 'text' | 'thinking' | 'tool', contentBlock: Obj, tool?: number): string => {
    const s = close();
    block = { index: next++, kind, tool };
    return (
      s + anthropicEvent({ type: 'content_block_start', index: block.index, content_block: contentBlock })
    );
  };
  return {
    encode(j) {
      let out = start();
      const c = j?.choices?.[0];
      if (!c) return out;
      const d = c.delta ?? {};
      if (typeof d.reasoning === 'string' && d.reasoning) {
        if (block?.kind !== 'thinking')
          out += open('thinking', { type: 'thinking', thinking: '', signature: '' });
        out += anthropicEvent({
          type: 'content_block_delta',
          index: block!.index,
          delta: { type: 'thinking_delta', thinking: d.reasoning },
        });
      }
      if (typeof d.content === 'string' && d.content) {
        if (block?.kind !== 'text') out += open('text', { type: 'text', text: '' });
        out += anthropicEvent({
          type: 'content_block_delta',
          index: block!.index,
          delta: { type: 'text_delta', text: d.content },
        });
      }
      for (const tc of Array.isArray(d.tool_calls) ? d.tool_calls : []) {
        const t = typeof tc.index === 'number' ? tc.index : 0;
        if (block?.kind !== 'tool' || block.tool !== t) {
          out += open(
            'tool',
            { type: 'tool_use', id: tc.id ?? newId('toolu'), name: tc.function?.name ?? '', input: {} },
            t,
          );
        }
        const args = tc.function?.arguments;
        if (typeof args === 'string' && args)
          out += anthropicEvent({
            type: 'content_block_delta',
            index: block!.index,
            delta: { type: 'input_json_delta', partial_json: args },
          });
      }
      if (c.finish_reason) stop = stopReasonOf(c.finish_reason);
      return out;
    },
    finish(usage: Usage) {
      return (
        start() +
        close() +
        anthropicEvent({
          type: 'message_delta',
          delta: { stop_reason: stop ?? 'end_turn', stop_sequence: null },
          usage: anthropicUsageOf(usage),
        }) +
        anthropicEvent({ type: 'message_stop' })
      );
    },
    fail: (message) => start() + anthropicEvent({ type: 'error', error: { type: 'api_error', message } }),
    upstreamError: (err) =>
      start() +
      anthropicEvent({
        type: 'error',
        error: { type: 'api_error', message: String(err?.message ?? 'upstream error') },
      }),
  };
}

/**
 * Anthropic → Anthropic: events pass through byte for byte; usage is read from message_start and
 * message_delta; `message_stop` is held back until the charge is settled.
 */
export function anthropicPassthroughCodec(): StreamCodec {
  const acc: Partial<AnthropicUsage> = {};
  let usageOk = true;
  let final = false;
  let done = false;
  let error: unknown = null;
  let stopRaw = '';
  const text: string[] = [];
  return {
    get done() {
      return done;
    },
    get error() {
      return error;
    },
    push(e) {
      if (done) return '';
      const j = parse(e);
      if (!j) return e.data === null ? e.raw : '';
      switch (j.type) {
        case 'message_start':
          if (j.message?.usage && !mergeAnthropicUsage(acc, j.message.usage)) usageOk = false;
          break;
        case 'message_delta':
          if (j.usage) {
            if (!mergeAnthropicUsage(acc, j.usage)) usageOk = false;
            final = true;
          }
          break;
        case 'content_block_start':
          if (j.content_block?.type === 'tool_use' && j.content_block.name) text.push(j.content_block.name);
          break;
        case 'content_block_delta': {
          const d = j.delta ?? {};
          const t = d.text ?? d.partial_json ?? d.thinking;
          if (typeof t === 'string' && t) text.push(t);
          break;
        }
        case 'message_stop':
          done = true;
          stopRaw = e.raw;
          return '';
        case 'error':
          error = j.error ?? j;
          break;
      }
      return e.raw;
    },
    usage: () => (usageOk && final ? usageFromAnthropic(acc) : null),
    promptUsage: () => (usageOk ? usageFromAnthropic({ ...acc, output_tokens: 0 }) : null),
    text: () => text.join(''),
    finish: () => stopRaw,
    fail: (message) => anthropicEvent({ type: 'error', error: { type: 'api_error', message } }),
  };
}
