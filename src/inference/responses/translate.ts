import type { Usage } from '../../billing/cost.js';
import { badRequest } from '../../lib/errors.js';
import { newId } from '../../lib/ids.js';

/** The Responses API over chat completions: request items → messages, completion → response object. */

type Obj = Record<string, any>;

/** `input` as a list of items (a string is one user message). */
export function inputItemsOf(input: unknown): Obj[] {
  if (typeof input === 'string') return [{ type: 'message', role: 'user', content: input }];
  return input as Obj[];
}

/** A previous response's output, as input items for the next turn (ids dropped: they are not the provider's). */
export function outputAsInputItems(output: unknown): Obj[] {
  const out: Obj[] = [];
  for (const it of Array.isArray(output) ? output : []) {
    if (it?.type === 'message') {
      const content = (Array.isArray(it.content) ? it.content : [])
        .filter((p: Obj) => p?.type === 'output_text' || p?.type === 'refusal')
        .map((p: Obj) =>
          p.type === 'refusal'
            ? { type: 'refusal', refusal: p.refusal }
            : { type: 'output_text', text: p.text },
        );
      out.push({ type: 'message', role: it.role ?? 'assistant', content });
    } else if (it?.type === 'function_call') {
      out.push({ type: 'function_call', call_id: it.call_id, name: it.name, arguments: it.arguments ?? '' });
    }
  }
  return out;
}

function textParts(content: unknown): string {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return '';
  return content
    .map((p: Obj) => (typeof p?.text === 'string' ? p.text : typeof p?.refusal === 'string' ? p.refusal : ''))
    .join('');
}

function chatParts(content: unknown, at: string): unknown {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) throw badRequest(`${at}.content must be a string or a list of parts`, at);
  return content.map((p: Obj, i: number) => {
    switch (p?.type) {
      case 'input_text':
      case 'output_text':
      case 'text':
        return { type: 'text', text: String(p.text ?? '') };
      case 'input_image': {
        const url = typeof p.image_url === 'string' ? p.image_url : p.image_url?.url;
        if (typeof url !== 'string')
          throw badRequest(
            `${at}.content[${i}]: only input_image with an image_url (URL or data URL) can be served by this model`,
            `${at}.content`,
          );
        return { type: 'image_url', image_url: { url, ...(p.detail ? { detail: p.detail } : {}) } };
      }
      default:
        throw badRequest(
          `${at}.content[${i}]: part type '${p?.type}' cannot be served by this model`,
          `${at}.content`,
        );
    }
  });
}

/** Items (and instructions) → chat messages. */
export function itemsToChatMessages(instructions: unknown, items: Obj[]): Obj[] {
  const messages: Obj[] = [];
  if (typeof instructions === 'string' && instructions)
    messages.push({ role: 'system', content: instructions });
  items.forEach((it, i) => {
    const at = `input[${i}]`;
    const type = it?.type ?? (it?.role ? 'message' : undefined);
    switch (type) {
      case 'message': {
        const role = it.role;
        if (role === 'system' || role === 'developer')
          messages.push({ role: 'system', content: textParts(it.content) });
        else if (role === 'assistant') messages.push({ role: 'assistant', content: textParts(it.content) });
        else if (role === 'user') messages.push({ role: 'user', content: chatParts(it.content, at) });
        else throw badRequest(`${at}.role must be user, assistant, system or developer`, `${at}.role`);
        break;
      }
      case 'function_call': {
        const call = {
          id: it.call_id,
          type: 'function',
          function: { name: it.name, arguments: typeof it.arguments === 'string' ? it.arguments : '{}' },
        };
        const last = messages.at(-1);
        if (last?.role === 'assistant' && (last.tool_calls || !last.content)) {
          last.tool_calls = [...(last.tool_calls ?? []), call];
        } else messages.push({ role: 'assistant', content: null, tool_calls: [call] });
        break;
      }
      case 'function_call_output':
        messages.push({
          role: 'tool',
          tool_call_id: it.call_id,
          content: typeof it.output === 'string' ? it.output : JSON.stringify(it.output ?? ''),
        });
        break;
      case 'reasoning':
        break; // provider-specific; nothing to carry over to another provider
      default:
        throw badRequest(`${at}: item type '${type}' cannot be served by this model`, `${at}.type`);
    }
  });
  return messages;
}

/** Responses request → chat completions request. */
export function responsesToChatRequest(body: Obj, items: Obj[], upstreamId: string, cap: number | null): Obj {
  const out: Obj = { model: upstreamId, messages: itemsToChatMessages(body.instructions, items) };
  const max = cap ?? body.max_output_tokens ?? null;
  if (max !== null) out.max_tokens = max;
  if (body.stream === true) {
    out.stream = true;
    out.stream_options = { include_usage: true };
  }
  for (const k of ['temperature', 'top_p', 'user', 'parallel_tool_calls', 'seed'])
    if (body[k] !== undefined && body[k] !== null) out[k] = body[k];
  if (Array.isArray(body.tools) && body.tools.length) {
    out.tools = body.tools.map((t: Obj, i: number) => {
      if (t?.type !== 'function')
        throw badRequest(
          `tools[${i}]: tool type '${t?.type}' cannot be served by this model`,
          `tools[${i}].type`,
        );
      return {
        type: 'function',
        function: {
          name: t.name,
          ...(t.description ? { description: t.description } : {}),
          parameters: t.parameters ?? { type: 'object', properties: {} },
          ...(typeof t.strict === 'boolean' ? { strict: t.strict } : {}),
        },
      };
    });
  }
  if (typeof body.reasoning?.effort === 'string') out.reasoning_effort = body.reasoning.effort;
  const tc = body.tool_choice;
  if (typeof tc === 'string') out.tool_choice = tc;
  else if (tc?.type === 'function' && tc.name)
    out.tool_choice = { type: 'function', function: { name: tc.name } };
  const f = body.text?.format;
  if (f?.type === 'json_schema')
    out.response_format = {
      type: 'json_schema',
      json_schema: {
        name: f.name ?? 'response',
        schema: f.schema,
        ...(typeof f.strict === 'boolean' ? { strict: f.strict } : {}),
        ...(f.description ? { description: f.description } : {}),
      },
    };
  else if (f?.type === 'json_object') out.response_format = { type: 'json_object' };
  return out;
}

/** Usage in the Responses API's shape. */
export function responsesUsageOf(u: Usage): Obj {
  return {
    input_tokens: u.promptTokens,
    input_tokens_details: { cached_tokens: u.cachedTokens },
    output_tokens: u.completionTokens,
    output_tokens_details: { reasoning_tokens: u.reasoningTokens },
    total_tokens: u.promptTokens + u.completionTokens,
  };
}

export interface ResponseMeta {
  id: string;
  createdAt: number;
  model: string;
  body: Obj;
}

export function newResponseMeta(body: Obj, model: string): ResponseMeta {
  return { id: newId('resp'), createdAt: Math.floor(Date.now() / 1000), model, body };
}

/** The response object around `output`. */
export function responseObject(
  meta: ResponseMeta,
  status: string,
  output: Obj[],
  usage: Usage | null,
  incomplete: string | null = null,
): Obj {
  const b = meta.body;
  const text = output
    .filter((o) => o.type === 'message')
    .flatMap((o) => o.content)
    .filter((p: Obj) => p?.type === 'output_text')
    .map((p: Obj) => p.text)
    .join('');
  return {
    id: meta.id,
    object: 'response',
    created_at: meta.createdAt,
    status,
    background: false,
    error: null,
    incomplete_details: incomplete ? { reason: incomplete } : null,
    instructions: b.instructions ?? null,
    max_output_tokens: b.max_output_tokens ?? null,
    model: meta.model,
    output,
    output_text: text,
    parallel_tool_calls: b.parallel_tool_calls ?? true,
    previous_response_id: b.previous_response_id ?? null,
    store: b.store ?? true,
    temperature: b.temperature ?? 1,
    text: b.text ?? { format: { type: 'text' } },
    tool_choice: b.tool_choice ?? 'auto',
    tools: b.tools ?? [],
    top_p: b.top_p ?? 1,
    truncation: 'disabled',
    usage: usage ? responsesUsageOf(usage) : null,
    user: b.user ?? null,
    metadata: b.metadata ?? {},
  };
}

export const messageItem = (id: string, text: string, status = 'completed'): Obj => ({
  id,
  type: 'message',
  status,
  role: 'assistant',
  content: [{ type: 'output_text', annotations: [], logprobs: [], text }],
});

/** Chat completion → response object. */
export function chatToResponse(chat: Obj, meta: ResponseMeta, usage: Usage): Obj {
  const choice = chat?.choices?.[0] ?? {};
  const m = choice.message ?? {};
  const output: Obj[] = [];
  if (typeof m.content === 'string' && m.content !== '') output.push(messageItem(newId('msg'), m.content));
  for (const tc of Array.isArray(m.tool_calls) ? m.tool_calls : []) {
    output.push({
      id: newId('fc'),
      type: 'function_call',
      status: 'completed',
      call_id: tc.id,
      name: tc.function?.name,
      arguments: tc.function?.arguments ?? '',
    });
  }
  const incomplete = choice.finish_reason === 'length' ? 'max_output_tokens' : null;
  return responseObject(meta, incomplete ? 'incomplete' : 'completed', output, usage, incomplete);
}
