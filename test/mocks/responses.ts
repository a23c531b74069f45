// POST /v1/responses (OpenAI Responses API, text output only) — non-stream and typed-event stream.
import { findModel } from './catalog.js';
import { sendError } from './errors.js';
import { type Ctx, intact, nowSec, randomId, sendJson } from './http.js';
import { type Frame, frame, streamFrames } from './sse.js';
import { buildUsage, planReply, responsesPromptTokens } from './tokens.js';
import type { MockUsage } from './types.js';

function usageWire(u: MockUsage): Record<string, unknown> {
  return {
    input_tokens: u.prompt_tokens,
    input_tokens_details: { cached_tokens: u.cached_tokens ?? 0 },
    output_tokens: u.completion_tokens,
    output_tokens_details: { reasoning_tokens: u.reasoning_tokens ?? 0 },
    total_tokens: u.total_tokens,
  };
}

export async function handleResponses(ctx: Ctx): Promise<void> {
  const b = ctx.body;
  if (!b || typeof b !== 'object' || typeof b.model !== 'string' || b.model === '') {
    return sendError(ctx, 400, "Missing required parameter: 'model'.", {
      param: 'model',
      code: 'missing_required_parameter',
    });
  }
  if (b.input === undefined || b.input === null || (Array.isArray(b.input) && b.input.length === 0)) {
    return sendError(ctx, 400, "Missing required parameter: 'input'.", {
      param: 'input',
      code: 'missing_required_parameter',
    });
  }
  if (!findModel(ctx.models, b.model)) {
    return sendError(ctx, 404, `The model \`${b.model}\` does not exist or you do not have access to it.`, {
      param: 'model',
      code: 'model_not_found',
    });
  }
  const cap = typeof b.max_output_tokens === 'number' ? b.max_output_tokens : undefined;
  const plan = planReply(ctx.opts.chunks, cap, undefined);
  const usage = buildUsage(responsesPromptTokens(b.input, b.instructions), plan.words, ctx.opts);
  ctx.call.usage = usage;
  const noUsage = ctx.fault?.type === 'no-usage';

  const id = randomId('resp_', 48);
  const msgId = randomId('msg_', 48);
  const createdAt = nowSec();
  const response = (status: string, output: unknown[], u: unknown) => ({
    id,
    object: 'response',
    created_at: createdAt,
    status,
    background: false,
    error: null,
    incomplete_details: null,
    instructions: b.instructions ?? null,
    max_output_tokens: b.max_output_tokens ?? null,
    model: b.model,
    output,
    parallel_tool_calls: true,
    previous_response_id: b.previous_response_id ?? null,
    reasoning: { effort: null, summary: null },
    service_tier: 'default',
    store: b.store ?? true,
    temperature: b.temperature ?? 1,
    text: { format: { type: 'text' } },
    tool_choice: b.tool_choice ?? 'auto',
    tools: b.tools ?? [],
    top_p: b.top_p ?? 1,
    truncation: 'disabled',
    usage: u,
    user: null,
    metadata: b.metadata ?? {},
  });
  const part = { type: 'output_text', annotations: [], logprobs: [], text: plan.text };
  const item = { id: msgId, type: 'message', status: 'completed', content: [part], role: 'assistant' };
  const finalUsage = noUsage ? null : usageWire(usage);

  if (b.stream !== true) {
    ctx.call.usageReported = !noUsage && intact(ctx, false);
    return sendJson(ctx, 200, response('completed', [item], finalUsage));
  }

  const frames: Frame[] = [];
  let seq = 0;
  const ev = (type: string, data: Record<string, unknown>, content = false) =>
    frames.push(frame({ type, sequence_number: seq++, ...data }, { event: type, content }));
  const loc = { item_id: msgId, output_index: 0, content_index: 0 };
  ev('response.created', { response: response('in_progress', [], null) });
  ev('response.in_progress', { response: response('in_progress', [], null) });
  ev('response.output_item.added', {
    output_index: 0,
    item: { id: msgId, type: 'message', status: 'in_progress', content: [], role: 'assistant' },
  });
  ev('response.content_part.added', {
    ...loc,
    part: { type: 'output_text', annotations: [], logprobs: [], text: '' },
  });
  for (const delta of plan.chunks) ev('response.output_text.delta', { ...loc, delta, logprobs: [] }, true);
  ev('response.output_text.done', { ...loc, text: plan.text, logprobs: [] });
  ev('response.content_part.done', { ...loc, part });
  ev('response.output_item.done', { output_index: 0, item });
  ev('response.completed', { response: response('completed', [item], finalUsage) });
  ctx.call.usageReported = !noUsage && intact(ctx, true);
  const broken = 'event: response.output_text.delta\ndata: {"type":"response.output_text.delta","delta":\n\n';
  await streamFrames(ctx, frames, broken);
}
