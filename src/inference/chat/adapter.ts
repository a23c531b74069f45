import { chatToAnthropicUpstream, respondChatFromAnthropic } from '../../providers/anthropic/chat-adapter.js';
import { responseCacheKey } from '../../routing/cache.js';
import type { Adapter } from '../pipeline.js';
import { respondJson } from '../respond-json.js';
import { upstreamBody } from '../upstream-body.js';
import { usageFromOpenAi } from '../usage.js';
import { completionTextOf, countChatUsage } from './count.js';
import { relayChatStream } from './stream.js';

/** Fields that steer the gateway and are not the provider's business. */
const GATEWAY_FIELDS = new Set(['provider', 'models', 'session_id', 'cache']);

/** OpenAI chat completions over any OpenAI-shaped provider. */
export function chatAdapter(
  body: Record<string, any>,
  /** Called with the first choice's text once a reply completed, before the client gets its end (chat history). */
  onComplete?: (text: string) => Promise<void>,
): Adapter {
  const stream = body.stream === true;
  const clientWantsUsage = stream && body.stream_options?.include_usage === true;
  return {
    // A turn saved to chat history is a side effect a cached answer would skip: never cached.
    cache: onComplete
      ? undefined
      : {
          requested: body.cache === true,
          key: (userId) => responseCacheKey(userId, 'chat.completions', body),
        },
    upstream(target, cap) {
      if (target.provider.def.wire === 'anthropic') return chatToAnthropicUpstream(body, target, cap);
      const out = upstreamBody(body, GATEWAY_FIELDS, { model: target.entry.upstreamId });
      // Ask for usage so streams are billed from the provider's count, not a guess.
      if (stream) out.stream_options = { ...(body.stream_options ?? {}), include_usage: true };
      if (cap !== null) {
        if (body.max_completion_tokens != null) out.max_completion_tokens = cap;
        else out.max_tokens = cap;
      }
      return {
        path: '/chat/completions',
        body: JSON.stringify(out),
        headers: stream ? { accept: 'text/event-stream' } : undefined,
      };
    },
    respond(res, io) {
      if (io.target.provider.def.wire === 'anthropic')
        return respondChatFromAnthropic(res, io, body, onComplete);
      if (stream)
        return relayChatStream(res, io, {
          clientWantsUsage,
          messages: body.messages,
          tools: body.tools,
          onComplete,
        });
      return respondJson(res, io, {
        usageOf: (b) => usageFromOpenAi(b?.usage),
        countUsage: (b) => countChatUsage(body.messages, completionTextOf(b), body.tools),
        beforeSend: onComplete
          ? (b) => {
              const c = b?.choices?.[0]?.message?.content;
              return onComplete(typeof c === 'string' ? c : '');
            }
          : undefined,
      });
    },
  };
}
