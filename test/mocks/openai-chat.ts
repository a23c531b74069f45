// POST /v1/chat/completions for the OpenAI-compatible kinds, with each provider's flavour.
import { findModel, openrouterCost, openrouterProvider } from './catalog.js';
import { sendError } from './errors.js';
import { type Ctx, intact, nowSec, randomId, sendJson } from './http.js';
import { comment, DONE, type Frame, frame, streamFrames } from './sse.js';
import {
  argumentFragments,
  buildUsage,
  messagesTokens,
  pickTool,
  planReply,
  TOOL_ARGUMENTS,
} from './tokens.js';
import type { MockUsage } from './types.js';

const FINGERPRINT = 'fp_mock0c2ff1';

/** `usage` as each provider writes it. */
export function usageWire(ctx: Ctx, u: MockUsage): Record<string, unknown> {
  const base = {
    prompt_tokens: u.prompt_tokens,
    completion_tokens: u.completion_tokens,
    total_tokens: u.total_tokens,
  };
  switch (ctx.kind) {
    case 'openrouter':
      return {
        ...base,
        cost: u.cost ?? 0,
        is_byok: false,
        prompt_tokens_details: {
          cached_tokens: u.cached_tokens ?? 0,
          ...(u.cache_write_tokens ? { cache_write_tokens: u.cache_write_tokens } : {}),
          audio_tokens: 0,
        },
        cost_details: { upstream_inference_cost: null },
        completion_tokens_details: { reasoning_tokens: u.reasoning_tokens ?? 0, image_tokens: 0 },
      };
    case 'featherless':
    case 'chutes': // vLLM-style servers
      return {
        ...base,
        prompt_tokens_details: u.cached_tokens ? { cached_tokens: u.cached_tokens } : null,
        ...(u.reasoning_tokens
          ? { completion_tokens_details: { reasoning_tokens: u.reasoning_tokens } }
          : {}),
      };
    default:
      return {
        ...base,
        prompt_tokens_details: { cached_tokens: u.cached_tokens ?? 0, audio_tokens: 0 },
        completion_tokens_details: {
          reasoning_tokens: u.reasoning_tokens ?? 0,
          audio_tokens: 0,
          accepted_prediction_tokens: 0,
          rejected_prediction_tokens: 0,
        },
      };
  }
}

/** Fields every chat object of this kind carries besides id/object/created/model/choices. */
function topExtras(ctx: Ctx, model: string): Record<string, unknown> {
  switch (ctx.kind) {
    case 'openrouter':
      return { provider: openrouterProvider(model), system_fingerprint: FINGERPRINT };
    case 'openai':
      return { service_tier: 'default', system_fingerprint: FINGERPRINT };
    case 'portkey':
      return { system_fingerprint: FINGERPRINT, provider: 'openai' };
    default:
      return { system_fingerprint: null };
  }
}

function wantsStreamUsage(ctx: Ctx): boolean {
  const b = ctx.body;
  if (b.stream_options?.include_usage === true) return true;
  return ctx.kind === 'openrouter' && b.usage?.include === true;
}

export async function handleChat(ctx: Ctx): Promise<void> {
  const b = ctx.body;
  const kind = ctx.kind;
  if (!b || typeof b !== 'object' || typeof b.model !== 'string' || b.model === '') {
    return sendError(ctx, 400, 'you must provide a model parameter', { param: 'model', code: null });
  }
  if (!Array.isArray(b.messages) || b.messages.length === 0) {
    return sendError(ctx, 400, "Invalid 'messages': empty array. Expected an array with minimum length 1.", {
      param: 'messages',
      code: 'empty_array',
    });
  }
  const model = findModel(ctx.models, b.model);
  if (!model) {
    if (kind === 'openrouter') return sendError(ctx, 404, `No endpoints found for ${b.model}.`);
    return sendError(ctx, 404, `The model \`${b.model}\` does not exist or you do not have access to it.`, {
      type: 'invalid_request_error',
      param: 'model',
      code: 'model_not_found',
    });
  }

  const cap = b.max_tokens ?? b.max_completion_tokens;
  const plan = planReply(ctx.opts.chunks, typeof cap === 'number' ? cap : undefined, b.stop);
  const tool = pickTool(b.tools, b.tool_choice);
  const usage = buildUsage(messagesTokens(b.messages), plan.words, ctx.opts);
  if (kind === 'openrouter') usage.cost = openrouterCost(usage, model.pricing);
  const noUsage = ctx.fault?.type === 'no-usage';
  ctx.call.usage = usage;

  const id = kind === 'openrouter' ? `gen-${nowSec()}-${randomId('', 20)}` : randomId('chatcmpl-', 29);
  const created = nowSec();
  const finish = tool ? 'tool_calls' : plan.cut === 'length' ? 'length' : 'stop';
  const callId = randomId('call_', 24);
  const toolCall = { id: callId, type: 'function', function: { name: tool, arguments: TOOL_ARGUMENTS } };
  const orFinish = (r: string | null) => (kind === 'openrouter' ? { native_finish_reason: r } : {});
  const top = { id, object: 'chat.completion', created, model: b.model, ...topExtras(ctx, b.model) };

  if (b.stream !== true) {
    const n = Number.isInteger(b.n) && b.n > 1 ? Math.min(b.n, 8) : 1;
    if (n > 1) {
      usage.completion_tokens *= n;
      usage.total_tokens = usage.prompt_tokens + usage.completion_tokens;
      if (kind === 'openrouter') usage.cost = openrouterCost(usage, model.pricing);
    }
    const message = tool
      ? { role: 'assistant', content: null, tool_calls: [toolCall], refusal: null, annotations: [] }
      : { role: 'assistant', content: plan.text, refusal: null, annotations: [] };
    if (kind === 'openrouter') Object.assign(message, { reasoning: null });
    const choices = Array.from({ length: n }, (_, index) => ({
      index,
      message,
      logprobs: null,
      finish_reason: finish,
      ...orFinish(finish),
    }));
    ctx.call.usageReported = !noUsage && intact(ctx, false);
    return sendJson(ctx, 200, { ...top, choices, ...(noUsage ? {} : { usage: usageWire(ctx, usage) }) });
  }

  // ---- streaming ----
  const includeUsage = wantsStreamUsage(ctx);
  const usageNull = includeUsage && (kind === 'openai' || kind === 'portkey') ? { usage: null } : {};
  const chunk = (
    delta: Record<string, unknown>,
    finishReason: string | null,
    extra: Record<string, unknown> = {},
  ) => ({
    ...top,
    object: 'chat.completion.chunk',
    choices: [{ index: 0, delta, logprobs: null, finish_reason: finishReason, ...orFinish(finishReason) }],
    ...usageNull,
    ...extra,
  });
  const frames: Frame[] = [];
  if (kind === 'openrouter') frames.push(comment('OPENROUTER PROCESSING'));
  if (tool) {
    frames.push(
      frame(
        chunk(
          {
            role: 'assistant',
            content: null,
            tool_calls: [{ index: 0, id: callId, type: 'function', function: { name: tool, arguments: '' } }],
            refusal: null,
          },
          null,
        ),
      ),
    );
    for (const part of argumentFragments(ctx.opts.chunks)) {
      frames.push(
        frame(chunk({ tool_calls: [{ index: 0, function: { arguments: part } }] }, null), { content: true }),
      );
    }
  } else {
    frames.push(frame(chunk({ role: 'assistant', content: '', refusal: null }, null)));
    for (const text of plan.chunks) frames.push(frame(chunk({ content: text }, null), { content: true }));
  }
  const sendUsage = includeUsage && !noUsage;
  const usageOnFinish = sendUsage && kind === 'featherless';
  frames.push(frame(chunk({}, finish, usageOnFinish ? { usage: usageWire(ctx, usage) } : {})));
  if (sendUsage && !usageOnFinish) {
    frames.push(
      frame({ ...top, object: 'chat.completion.chunk', choices: [], usage: usageWire(ctx, usage) }),
    );
  }
  frames.push(DONE);
  ctx.call.usageReported = sendUsage && intact(ctx, true);
  const broken = `data: {"id":"${id}","object":"chat.completion.chunk","choices":[{"index":0,"delta":\n\n`;
  await streamFrames(ctx, frames, broken);
}
