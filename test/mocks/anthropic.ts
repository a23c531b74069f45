// Anthropic Messages API: POST /v1/messages (non-stream + event stream) and POST /v1/messages/count_tokens.
import { findModel } from './catalog.js';
import { sendError } from './errors.js';
import { type Ctx, intact, randomId, sendJson } from './http.js';
import { type Frame, frame, streamFrames } from './sse.js';
import { anthropicPromptTokens, argumentFragments, pickTool, planReply } from './tokens.js';
import type { MockUsage } from './types.js';

/** Validation shared by /messages and /count_tokens; returns false after answering with an error. */
function validate(ctx: Ctx, needMaxTokens: boolean): boolean {
  const b = ctx.body;
  if (!b || typeof b !== 'object' || typeof b.model !== 'string' || b.model === '') {
    sendError(ctx, 400, 'model: Field required');
    return false;
  }
  if (needMaxTokens && (typeof b.max_tokens !== 'number' || !Number.isInteger(b.max_tokens))) {
    sendError(ctx, 400, 'max_tokens: Field required');
    return false;
  }
  if (needMaxTokens && b.max_tokens < 1) {
    sendError(ctx, 400, 'max_tokens: Input should be greater than or equal to 1');
    return false;
  }
  if (!Array.isArray(b.messages) || b.messages.length === 0) {
    sendError(ctx, 400, 'messages: at least one message is required');
    return false;
  }
  if (b.system !== undefined && typeof b.system !== 'string' && !Array.isArray(b.system)) {
    sendError(ctx, 400, 'system: Input should be a valid string or a list of text blocks');
    return false;
  }
  if (!findModel(ctx.models, b.model)) {
    sendError(ctx, 404, `model: ${b.model}`);
    return false;
  }
  return true;
}

export function handleCountTokens(ctx: Ctx): void {
  if (!validate(ctx, false)) return;
  sendJson(ctx, 200, { input_tokens: anthropicPromptTokens(ctx.body.system, ctx.body.messages) });
}

export async function handleMessages(ctx: Ctx): Promise<void> {
  if (!validate(ctx, true)) return;
  const b = ctx.body;
  const o = ctx.opts;
  const plan = planReply(o.chunks, b.max_tokens, b.stop_sequences);
  const tool = pickTool(b.tools, b.tool_choice);
  const input = anthropicPromptTokens(b.system, b.messages);
  const read = Math.max(0, o.anthropicCache?.read ?? o.cachedTokens ?? 0);
  const written = Math.max(0, o.anthropicCache?.write ?? o.cacheWriteTokens ?? 0);
  const output = plan.words + Math.max(0, o.reasoningTokens ?? 0);
  // Normalised (OpenAI-style) view for tests: prompt = uncached input + cache read + cache write.
  const usage: MockUsage = {
    prompt_tokens: input + read + written,
    completion_tokens: output,
    total_tokens: input + read + written + output,
    cached_tokens: read,
    cache_write_tokens: written,
    reasoning_tokens: Math.max(0, o.reasoningTokens ?? 0),
  };
  ctx.call.usage = usage;
  const noUsage = ctx.fault?.type === 'no-usage';
  const inputUsage = {
    input_tokens: input,
    cache_creation_input_tokens: written,
    cache_read_input_tokens: read,
  };
  const fullUsage = {
    ...inputUsage,
    cache_creation: { ephemeral_5m_input_tokens: written, ephemeral_1h_input_tokens: 0 },
    output_tokens: output,
    service_tier: 'standard',
  };

  const stopReason = tool
    ? 'tool_use'
    : plan.cut === 'length'
      ? 'max_tokens'
      : plan.cut === 'stop'
        ? 'stop_sequence'
        : 'end_turn';
  const stopSequence = !tool && plan.cut === 'stop' ? plan.stopSequence : null;
  const id = randomId('msg_01', 22);
  const toolId = randomId('toolu_01', 22);
  const message = (content: unknown[], reason: string | null, seq: string | null, u: unknown) => ({
    id,
    type: 'message',
    role: 'assistant',
    model: b.model,
    content,
    stop_reason: reason,
    stop_sequence: seq,
    ...(u ? { usage: u } : {}),
  });

  if (b.stream !== true) {
    const content = tool
      ? [{ type: 'tool_use', id: toolId, name: tool, input: { location: 'Paris' } }]
      : [{ type: 'text', text: plan.text }];
    ctx.call.usageReported = !noUsage && intact(ctx, false);
    return sendJson(ctx, 200, message(content, stopReason, stopSequence, noUsage ? null : fullUsage));
  }

  const frames: Frame[] = [];
  const ev = (type: string, data: Record<string, unknown> = {}, content = false) =>
    frames.push(frame({ type, ...data }, { event: type, content }));
  ev('message_start', {
    message: message([], null, null, noUsage ? null : { ...fullUsage, output_tokens: 1 }),
  });
  ev('content_block_start', {
    index: 0,
    content_block: tool
      ? { type: 'tool_use', id: toolId, name: tool, input: {} }
      : { type: 'text', text: '' },
  });
  ev('ping');
  if (tool) {
    ev('content_block_delta', { index: 0, delta: { type: 'input_json_delta', partial_json: '' } });
    for (const part of argumentFragments(o.chunks)) {
      ev('content_block_delta', { index: 0, delta: { type: 'input_json_delta', partial_json: part } }, true);
    }
  } else {
    for (const text of plan.chunks)
      ev('content_block_delta', { index: 0, delta: { type: 'text_delta', text } }, true);
  }
  ev('content_block_stop', { index: 0 });
  ev('message_delta', {
    delta: { stop_reason: stopReason, stop_sequence: stopSequence },
    ...(noUsage ? {} : { usage: { ...inputUsage, output_tokens: output } }),
  });
  ev('message_stop');
  ctx.call.usageReported = !noUsage && intact(ctx, true);
  const broken = 'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":\n\n';
  await streamFrames(ctx, frames, broken);
}
