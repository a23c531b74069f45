import { badRequest } from '../../lib/errors.js';

/** Request translation between OpenAI chat completions and Anthropic Messages, both directions. */

type Obj = Record<string, any>;

const DATA_URL = /^data:([^;,]+);base64,(.*)$/s;

/** OpenAI `image_url` part → Anthropic image block. */
function imageBlock(url: string): Obj {
  const m = DATA_URL.exec(url);
  if (m) return { type: 'image', source: { type: 'base64', media_type: m[1], data: m[2] } };
  return { type: 'image', source: { type: 'url', url } };
}

/** Anthropic image block → OpenAI `image_url` part. */
function imageUrlPart(block: Obj): Obj {
  const s = block.source ?? {};
  const url = s.type === 'base64' ? `data:${s.media_type};base64,${s.data}` : String(s.url ?? '');
  return { type: 'image_url', image_url: { url } };
}

function textOf(content: unknown): string {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return content == null ? '' : JSON.stringify(content);
  return content
    .map((p) => (typeof p === 'string' ? p : typeof p?.text === 'string' ? p.text : ''))
    .filter(Boolean)
    .join('\n');
}

function parseArguments(args: unknown): unknown {
  if (typeof args !== 'string' || args.trim() === '') return {};
  try {
    const v = JSON.parse(args);
    return v && typeof v === 'object' && !Array.isArray(v) ? v : { value: v };
  } catch {
    return { _raw: args };
  }
}

/** OpenAI content (string or parts) → Anthropic content blocks. */
function blocksOf(content: unknown): Obj[] {
  if (typeof content === 'string') return content === '' ? [] : [{ type: 'text', text: content }];
  if (!Array.isArray(content)) return [];
  const out: Obj[] = [];
  for (const p of content) {
    if (typeof p === 'string') out.push({ type: 'text', text: p });
    else if (p?.type === 'text' || p?.type === 'input_text' || p?.type === 'output_text')
      out.push({ type: 'text', text: String(p.text ?? '') });
    else if (p?.type === 'image_url') {
      const url = typeof p.image_url === 'string' ? p.image_url : p.image_url?.url;
      if (typeof url === 'string') out.push(imageBlock(url));
    } else if (p?.type === 'input_image' && typeof p.image_url === 'string')
      out.push(imageBlock(p.image_url));
    else if (p?.type === 'refusal' && typeof p.refusal === 'string')
      out.push({ type: 'text', text: p.refusal });
  }
  return out;
}

const STOP_TO_FINISH: Record<string, string> = {
  end_turn: 'stop',
  stop_sequence: 'stop',
  pause_turn: 'stop',
  max_tokens: 'length',
  model_context_window_exceeded: 'length',
  tool_use: 'tool_calls',
  refusal: 'content_filter',
};

export const finishReasonOf = (stop: unknown): string | null =>
  typeof stop === 'string' ? (STOP_TO_FINISH[stop] ?? 'stop') : null;

export function stopReasonOf(finish: unknown): string | null {
  switch (finish) {
    case null:
    case undefined:
      return null;
    case 'length':
      return 'max_tokens';
    case 'tool_calls':
    case 'function_call':
      return 'tool_use';
    case 'content_filter':
      return 'refusal';
    default:
      return 'end_turn';
  }
}

/**
 * OpenAI chat request → Anthropic Messages request. System/developer messages become `system`,
 * tool results become `tool_result` blocks in a user turn, consecutive same-role turns merge.
 */
export function chatToAnthropicRequest(body: Obj, upstreamId: string, maxTokens: number): Obj {
  const system: string[] = [];
  const messages: Obj[] = [];
  const push = (role: 'user' | 'assistant', blocks: Obj[]) => {
    if (blocks.length === 0) return;
    const last = messages.at(-1);
    if (last && last.role === role) last.content.push(...blocks);
    else messages.push({ role, content: blocks });
  };
  for (const m of body.messages as Obj[]) {
    switch (m.role) {
      case 'system':
      case 'developer':
        system.push(textOf(m.content));
        break;
      case 'user':
        push('user', blocksOf(m.content));
        break;
      case 'assistant': {
        const blocks = blocksOf(m.content);
        for (const tc of Array.isArray(m.tool_calls) ? m.tool_calls : []) {
          blocks.push({
            type: 'tool_use',
            id: tc.id,
            name: tc.function?.name,
            input: parseArguments(tc.function?.arguments),
          });
        }
        push('assistant', blocks);
        break;
      }
      case 'tool':
      case 'function':
        push('user', [
          { type: 'tool_result', tool_use_id: m.tool_call_id ?? m.name, content: textOf(m.content) },
        ]);
        break;
      default:
        throw badRequest(`messages: unsupported role '${m.role}'`, 'messages');
    }
  }
  const out: Obj = { model: upstreamId, max_tokens: maxTokens, messages };
  if (system.length) out.system = system.join('\n\n');
  if (body.stream === true) out.stream = true;
  if (body.temperature != null) out.temperature = Math.min(1, Math.max(0, body.temperature));
  if (body.top_p != null) out.top_p = body.top_p;
  if (body.top_k != null) out.top_k = body.top_k;
  if (body.stop != null) out.stop_sequences = Array.isArray(body.stop) ? body.stop : [body.stop];
  if (typeof body.user === 'string') out.metadata = { user_id: body.user };
  if (Array.isArray(body.tools) && body.tools.length) {
    out.tools = body.tools
      .filter((t: Obj) => t?.type === 'function' || t?.function)
      .map((t: Obj) => ({
        name: t.function.name,
        ...(t.function.description ? { description: t.function.description } : {}),
        input_schema: t.function.parameters ?? { type: 'object', properties: {} },
      }));
  }
  const tc = body.tool_choice;
  if (tc !== undefined && tc !== null && out.tools) {
    if (tc === 'auto') out.tool_choice = { type: 'auto' };
    else if (tc === 'required') out.tool_choice = { type: 'any' };
    else if (tc === 'none') out.tool_choice = { type: 'none' };
    else if (tc?.function?.name) out.tool_choice = { type: 'tool', name: tc.function.name };
    if (body.parallel_tool_calls === false && out.tool_choice)
      out.tool_choice.disable_parallel_tool_use = true;
  }
  applyResponseFormat(body.response_format, out);
  return out;
}

/** The tool that carries a JSON-schema answer (Messages has no `response_format`). */
export const JSON_RESPONSE_TOOL = 'json_response';

/** True when a chat request's `response_format` is served through the forced JSON_RESPONSE_TOOL. */
export const usesJsonTool = (body: Obj): boolean =>
  body.response_format?.type === 'json_schema' && !(Array.isArray(body.tools) && body.tools.length);

/**
 * `response_format` onto Messages: a JSON schema becomes a forced tool whose input is the answer
 * (translated back into the message's text); JSON mode becomes an instruction. With tools of
 * its own the request keeps them and gets the instruction instead.
 */
function applyResponseFormat(rf: Obj | undefined, out: Obj): void {
  if (!rf || rf.type === 'text') return;
  const schema = rf.type === 'json_schema' ? rf.json_schema?.schema : undefined;
  if (schema && !out.tools) {
    out.tools = [
      {
        name: JSON_RESPONSE_TOOL,
        description: rf.json_schema?.description ?? 'Give the answer as this JSON object.',
        input_schema: schema,
      },
    ];
    out.tool_choice = { type: 'tool', name: JSON_RESPONSE_TOOL };
    return;
  }
  const note = schema
    ? `Answer with only a JSON object matching this JSON schema: ${JSON.stringify(schema)}`
    : 'Answer with only a valid JSON object.';
  out.system = out.system ? `${out.system}\n\n${note}` : note;
}

/**
 * Anthropic Messages request → OpenAI chat request. `system` becomes the first message, tool_result
 * blocks become `tool` messages (placed before the rest of their user turn), tool_use blocks
 * become assistant tool_calls.
 */
export function anthropicToChatRequest(body: Obj, upstreamId: string, maxTokens: number): Obj {
  const messages: Obj[] = [];
  const sys = body.system;
  if (typeof sys === 'string' ? sys !== '' : Array.isArray(sys) && sys.length)
    messages.push({ role: 'system', content: textOf(sys) });
  for (const m of body.messages as Obj[]) {
    const content = typeof m.content === 'string' ? [{ type: 'text', text: m.content }] : m.content;
    if (m.role === 'assistant') {
      const text: string[] = [];
      const toolCalls: Obj[] = [];
      for (const b of content as Obj[]) {
        if (b?.type === 'text') text.push(b.text);
        else if (b?.type === 'tool_use')
          toolCalls.push({
            id: b.id,
            type: 'function',
            function: { name: b.name, arguments: JSON.stringify(b.input ?? {}) },
          });
      }
      const msg: Obj = { role: 'assistant', content: text.length ? text.join('') : null };
      if (toolCalls.length) msg.tool_calls = toolCalls;
      messages.push(msg);
      continue;
    }
    const parts: Obj[] = [];
    for (const b of content as Obj[]) {
      if (b?.type === 'tool_result') {
        const c = b.content;
        const images = Array.isArray(c) ? c.filter((x: Obj) => x?.type === 'image') : [];
        messages.push({
          role: 'tool',
          tool_call_id: b.tool_use_id,
          content: (b.is_error ? '[error] ' : '') + textOf(c),
        });
        for (const img of images) parts.push(imageUrlPart(img));
      } else if (b?.type === 'text') parts.push({ type: 'text', text: b.text });
      else if (b?.type === 'image') parts.push(imageUrlPart(b));
      else if (b?.type === 'document' && b.source?.type === 'text')
        parts.push({ type: 'text', text: String(b.source.data ?? '') });
    }
    if (parts.length) {
      const allText = parts.every((p) => p.type === 'text');
      messages.push({
        role: 'user',
        content: allText && parts.length === 1 ? parts[0]!.text : parts,
      });
    }
  }
  const out: Obj = { model: upstreamId, messages, max_tokens: maxTokens };
  if (body.stream === true) {
    out.stream = true;
    out.stream_options = { include_usage: true };
  }
  if (body.temperature != null) out.temperature = body.temperature;
  if (body.top_p != null) out.top_p = body.top_p;
  if (Array.isArray(body.stop_sequences) && body.stop_sequences.length) out.stop = body.stop_sequences;
  if (typeof body.metadata?.user_id === 'string') out.user = body.metadata.user_id;
  if (Array.isArray(body.tools) && body.tools.length) {
    out.tools = body.tools.map((t: Obj) => ({
      type: 'function',
      function: {
        name: t.name,
        ...(t.description ? { description: t.description } : {}),
        parameters: t.input_schema ?? { type: 'object', properties: {} },
      },
    }));
    const tc = body.tool_choice;
    if (tc?.type === 'auto') out.tool_choice = 'auto';
    else if (tc?.type === 'any') out.tool_choice = 'required';
    else if (tc?.type === 'none') out.tool_choice = 'none';
    else if (tc?.type === 'tool') out.tool_choice = { type: 'function', function: { name: tc.name } };
    if (tc?.disable_parallel_tool_use === true) out.parallel_tool_calls = false;
  }
  return out;
}
