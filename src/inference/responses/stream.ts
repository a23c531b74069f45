import type { Usage } from '../../billing/cost.js';
import { newId } from '../../lib/ids.js';
import type { SseEvent } from '../sse.js';
import type { ChunkEncoder, StreamCodec } from '../translated-stream.js';
import { usageFromOpenAi } from '../usage.js';
import { messageItem, type ResponseMeta, responseObject } from './translate.js';

type Obj = Record<string, any>;

/** The final response object of a stream, once known, for storage. */
export type OnFinal = (response: Obj, usage: Usage) => Promise<void>;

/**
 * OpenAI chat chunks → the Responses API's typed events (response.created … response.completed),
 * with coherent output_index / content_index so the `openai` client's accumulator rebuilds it.
 */
export function responsesEventEncoder(meta: ResponseMeta, onFinal: OnFinal): ChunkEncoder {
  let seq = 0;
  let started = false;
  const output: Obj[] = [];
  let msg: { index: number; id: string; text: string } | null = null;
  const tools = new Map<number, { index: number; item: Obj }>();
  let finish: string | null = null;
  const ev = (type: string, data: Obj): string =>
    `event: ${type}\ndata: ${JSON.stringify({ type, sequence_number: seq++, ...data })}\n\n`;
  const start = (): string => {
    if (started) return '';
    started = true;
    const r = responseObject(meta, 'in_progress', [], null);
    return ev('response.created', { response: r }) + ev('response.in_progress', { response: r });
  };
  return {
    encode(j) {
      let out = start();
      const c = j?.choices?.[0];
      if (!c) return out;
      const d = c.delta ?? {};
      if (typeof d.content === 'string' && d.content) {
        if (!msg) {
          msg = { index: output.length, id: newId('msg'), text: '' };
          const item = { ...messageItem(msg.id, '', 'in_progress'), content: [] };
          output.push(item);
          out += ev('response.output_item.added', { output_index: msg.index, item });
          out += ev('response.content_part.added', {
            item_id: msg.id,
            output_index: msg.index,
            content_index: 0,
            part: { type: 'output_text', annotations: [], logprobs: [], text: '' },
          });
        }
        msg.text += d.content;
        out += ev('response.output_text.delta', {
          item_id: msg.id,
          output_index: msg.index,
          content_index: 0,
          delta: d.content,
          logprobs: [],
        });
      }
      for (const tc of Array.isArray(d.tool_calls) ? d.tool_calls : []) {
        const t = typeof tc.index === 'number' ? tc.index : 0;
        let call = tools.get(t);
        if (!call) {
          const item = {
            id: newId('fc'),
            type: 'function_call',
            status: 'in_progress',
            call_id: tc.id ?? newId('call'),
            name: tc.function?.name ?? '',
            arguments: '',
          };
          call = { index: output.length, item };
          tools.set(t, call);
          output.push(item);
          out += ev('response.output_item.added', { output_index: call.index, item: { ...item } });
        }
        const args = tc.function?.arguments;
        if (typeof args === 'string' && args) {
          call.item.arguments += args;
          out += ev('response.function_call_arguments.delta', {
            item_id: call.item.id,
            output_index: call.index,
            delta: args,
          });
        }
      }
      if (c.finish_reason) finish = c.finish_reason;
      return out;
    },
    async finish(usage) {
      let out = start();
      if (msg) {
        const item = messageItem(msg.id, msg.text);
        output[msg.index] = item;
        const loc = { item_id: msg.id, output_index: msg.index, content_index: 0 };
        out += ev('response.output_text.done', { ...loc, text: msg.text, logprobs: [] });
        out += ev('response.content_part.done', { ...loc, part: item.content[0] });
        out += ev('response.output_item.done', { output_index: msg.index, item });
      }
      for (const call of tools.values()) {
        call.item.status = 'completed';
        out += ev('response.function_call_arguments.done', {
          item_id: call.item.id,
          output_index: call.index,
          arguments: call.item.arguments,
        });
        out += ev('response.output_item.done', { output_index: call.index, item: call.item });
      }
      const incomplete = finish === 'length' ? 'max_output_tokens' : null;
      const final = responseObject(meta, incomplete ? 'incomplete' : 'completed', output, usage, incomplete);
      await onFinal(final, usage);
      return out + ev(incomplete ? 'response.incomplete' : 'response.completed', { response: final });
    },
    fail(message) {
      return (
        start() +
        ev('error', { code: 'upstream_stream_error', message, param: null }) +
        ev('response.failed', {
          response: {
            ...responseObject(meta, 'failed', output, null),
            error: { code: 'server_error', message },
          },
        })
      );
    },
    upstreamError(err) {
      return (
        start() +
        ev('error', {
          code: err?.code ?? 'upstream_error',
          message: String(err?.message ?? err),
          param: null,
        })
      );
    },
  };
}

/**
 * Responses → an upstream that speaks the Responses API: events pass through byte for byte; the
 * terminal `response.completed` / `response.incomplete` is held back until the charge is settled.
 */
export function responsesPassthroughCodec(onFinal: OnFinal): StreamCodec {
  let done = false;
  let error: unknown = null;
  let finalRaw = '';
  let final: Obj | null = null;
  let usage: Usage | null = null;
  const text: string[] = [];
  return {
    get done() {
      return done;
    },
    get error() {
      return error;
    },
    push(e: SseEvent) {
      if (done) return '';
      if (e.data === null) return e.raw;
      let j: any;
      try {
        j = JSON.parse(e.data);
      } catch {
        return '';
      }
      switch (j?.type) {
        case 'response.output_text.delta':
        case 'response.function_call_arguments.delta':
        case 'response.refusal.delta':
        case 'response.reasoning_summary_text.delta':
          if (typeof j.delta === 'string') text.push(j.delta);
          break;
        case 'response.output_item.added':
          if (j.item?.type === 'function_call' && typeof j.item.name === 'string') text.push(j.item.name);
          break;
        case 'response.completed':
        case 'response.incomplete':
          done = true;
          final = j.response ?? null;
          usage = usageFromOpenAi(j.response?.usage);
          finalRaw = e.raw;
          return '';
        case 'response.failed':
          usage = usageFromOpenAi(j.response?.usage);
          error = j.response?.error ?? j;
          break;
        case 'error':
          error = j;
          break;
      }
      return e.raw;
    },
    usage: () => usage,
    text: () => text.join(''),
    async finish(u) {
      if (final) await onFinal(final, u);
      return finalRaw;
    },
    fail: (message) =>
      `event: error\ndata: ${JSON.stringify({ type: 'error', code: 'upstream_stream_error', message, param: null })}\n\n`,
  };
}
