import type { Usage } from '../../billing/cost.js';
import { anthropicToChatRequest } from '../../providers/anthropic/request.js';
import { chatCompletionToAnthropic } from '../../providers/anthropic/response.js';
import { anthropicEventEncoder, anthropicPassthroughCodec } from '../../providers/anthropic/stream.js';
import { parseAnthropicUsage } from '../../providers/anthropic/usage.js';
import { completionTextOf, countChatUsage } from '../chat/count.js';
import type { Adapter } from '../pipeline.js';
import { respondJson } from '../respond-json.js';
import { composeCodec, openAiChunkDecoder, relayStream } from '../translated-stream.js';
import { upstreamBody } from '../upstream-body.js';
import { usageFromOpenAi } from '../usage.js';

type Obj = Record<string, any>;

/** Fields that steer the gateway and are not the provider's business. */
const GATEWAY_FIELDS = new Set(['provider', 'models', 'session_id']);

/**
 * Anthropic Messages inbound. Native to an Anthropic-wire provider (events relayed as they come);
 * translated onto chat completions for OpenAI-shaped providers, and the answer translated back.
 */
export function messagesAdapter(body: Obj, beta: string | null): Adapter {
  const stream = body.stream === true;
  const chatMessages = () => anthropicToChatRequest(body, body.model, body.max_tokens).messages;
  const count = (text: string) => countChatUsage(chatMessages(), text, body.tools);
  return {
    upstream(target, cap) {
      if (target.provider.def.wire === 'anthropic') {
        const out: Obj = upstreamBody(body, GATEWAY_FIELDS, { model: target.entry.upstreamId });
        if (cap !== null) out.max_tokens = cap;
        const headers: Record<string, string> = {};
        if (stream) headers.accept = 'text/event-stream';
        if (beta) headers['anthropic-beta'] = beta;
        return { path: '/messages', body: JSON.stringify(out), headers };
      }
      const out = anthropicToChatRequest(body, target.entry.upstreamId, cap ?? body.max_tokens);
      return {
        path: '/chat/completions',
        body: JSON.stringify(out),
        headers: stream ? { accept: 'text/event-stream' } : undefined,
      };
    },
    respond(res, io) {
      if (io.target.provider.def.wire === 'anthropic') {
        if (stream) return relayStream(res, io, anthropicPassthroughCodec(), count);
        return respondJson(res, io, {
          usageOf: (b) => parseAnthropicUsage(b?.usage),
          countUsage: (b) =>
            count(
              (Array.isArray(b?.content) ? b.content : [])
                .map(
                  (c: Obj) =>
                    c?.text ?? (c?.type === 'tool_use' ? c.name + JSON.stringify(c.input ?? {}) : ''),
                )
                .join(''),
            ),
        });
      }
      if (stream)
        return relayStream(
          res,
          io,
          composeCodec(openAiChunkDecoder(), anthropicEventEncoder(body.model)),
          count,
        );
      let usage: Usage | null = null;
      return respondJson(res, io, {
        usageOf: (b) => {
          usage = usageFromOpenAi(b?.usage);
          return usage;
        },
        countUsage: async (b) => {
          usage = await count(completionTextOf(b));
          return usage;
        },
        render: (b, _text, gu) =>
          JSON.stringify({
            ...chatCompletionToAnthropic(b, body.model, usage!, body.stop_sequences),
            gateway_usage: gu,
          }),
      });
    },
  };
}
