import { countChatUsage } from '../../inference/chat/count.js';
import type { RespondIO } from '../../inference/pipeline.js';
import { respondJson } from '../../inference/respond-json.js';
import { chatChunkEncoder, composeCodec, relayStream } from '../../inference/translated-stream.js';
import { badRequest } from '../../lib/errors.js';
import type { Target } from '../../routing/router.js';
import type { UpstreamResponse } from '../upstream.js';
import { chatToAnthropicRequest, usesJsonTool } from './request.js';
import { anthropicToChatCompletion } from './response.js';
import { anthropicChunkDecoder } from './stream.js';
import { parseAnthropicUsage } from './usage.js';

type Obj = Record<string, any>;

/** Max tokens Anthropic requires when the caller set none and the catalog knows no limit. */
export const ANTHROPIC_DEFAULT_MAX_TOKENS = 4096;

export function anthropicMaxTokens(requested: unknown, target: Target, cap: number | null): number {
  if (cap !== null) return cap;
  if (typeof requested === 'number' && requested > 0) return requested;
  return target.entry.maxOutputTokens ?? ANTHROPIC_DEFAULT_MAX_TOKENS;
}

/** /v1/chat/completions on an Anthropic target: the request goes out as Messages. */
export function chatToAnthropicUpstream(body: Obj, target: Target, cap: number | null) {
  if (typeof body.n === 'number' && body.n > 1)
    throw badRequest(`n > 1 is not supported by ${target.entry.id} (Anthropic answers one choice)`, 'n');
  const max = anthropicMaxTokens(body.max_completion_tokens ?? body.max_tokens, target, cap);
  const out = chatToAnthropicRequest(body, target.entry.upstreamId, max);
  return {
    path: '/messages',
    body: JSON.stringify(out),
    headers: body.stream === true ? { accept: 'text/event-stream' } : undefined,
  };
}

/** …and the answer (JSON or event stream) comes back as a chat completion. */
export function respondChatFromAnthropic(
  res: UpstreamResponse,
  io: RespondIO,
  body: Obj,
  onComplete?: (text: string) => Promise<void>,
): Promise<void> {
  const model = io.target.entry.id;
  const jsonTool = usesJsonTool(body);
  const count = (text: string) => countChatUsage(body.messages, text, body.tools);
  if (body.stream === true) {
    const wantsUsage = body.stream_options?.include_usage === true;
    return relayStream(
      res,
      io,
      composeCodec(anthropicChunkDecoder(model, jsonTool), chatChunkEncoder(wantsUsage)),
      count,
      onComplete,
    );
  }
  let usage: ReturnType<typeof parseAnthropicUsage> = null;
  return respondJson(res, io, {
    usageOf: (b) => {
      usage = parseAnthropicUsage(b?.usage);
      return usage;
    },
    countUsage: (b) =>
      count(
        (Array.isArray(b?.content) ? b.content : [])
          .map((c: Obj) => c?.text ?? (c?.type === 'tool_use' ? c.name + JSON.stringify(c.input ?? {}) : ''))
          .join(''),
      ),
    beforeSend: onComplete
      ? (b) =>
          onComplete(
            (Array.isArray(b?.content) ? b.content : [])
              .filter((c: Obj) => c?.type === 'text')
              .map((c: Obj) => c.text)
              .join(''),
          )
      : undefined,
    render: (b, _text, gu) =>
      JSON.stringify({ ...anthropicToChatCompletion(b, model, usage, jsonTool), gateway_usage: gu }),
  });
}
