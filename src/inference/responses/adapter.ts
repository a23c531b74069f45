import type { FastifyBaseLogger } from 'fastify';
import { emptyUsage, type Usage } from '../../billing/cost.js';
import { chatToAnthropicUpstream } from '../../providers/anthropic/chat-adapter.js';
import { usesJsonTool } from '../../providers/anthropic/request.js';
import { anthropicToChatCompletion } from '../../providers/anthropic/response.js';
import { anthropicChunkDecoder } from '../../providers/anthropic/stream.js';
import { parseAnthropicUsage } from '../../providers/anthropic/usage.js';
import type { UpstreamResponse } from '../../providers/upstream.js';
import { countChatUsage } from '../chat/count.js';
import type { Adapter, RespondIO } from '../pipeline.js';
import { notJson, readUpstreamText } from '../respond-json.js';
import { composeCodec, openAiChunkDecoder, relayStream } from '../translated-stream.js';
import { upstreamBody } from '../upstream-body.js';
import { usageFromOpenAi } from '../usage.js';
import type { ResponsesStore } from './store.js';
import { responsesEventEncoder, responsesPassthroughCodec } from './stream.js';
import { chatToResponse, itemsToChatMessages, newResponseMeta, responsesToChatRequest } from './translate.js';

type Obj = Record<string, any>;

const GATEWAY_FIELDS = new Set(['provider', 'models', 'session_id', 'previous_response_id']);

export interface ResponsesContext {
  /** The whole conversation: the previous chain expanded, then this request's input. */
  items: Obj[];
  userId: string;
  store: ResponsesStore;
  log: FastifyBaseLogger;
  /** Chat history: saves the turn and the reply when the request named a session. */
  onComplete?: (assistantText: string) => Promise<void>;
}

/** Text the output of a response object holds (for counting when no usage came back). */
function outputText(r: Obj): string {
  let s = '';
  for (const o of Array.isArray(r?.output) ? r.output : []) {
    if (o?.type === 'function_call') s += (o.name ?? '') + (o.arguments ?? '');
    for (const p of Array.isArray(o?.content) ? o.content : []) if (typeof p?.text === 'string') s += p.text;
  }
  return s;
}

/**
 * The Responses API. Native where the provider has it (`capabilities.responses`); otherwise
 * translated onto chat completions (or Anthropic Messages) and the answer, streams included,
 * translated back into response objects and typed events. Stored (unless `store: false`) for
 * `GET /v1/responses/{id}` and `previous_response_id`.
 */
export function responsesAdapter(body: Obj, ctx: ResponsesContext): Adapter {
  const stream = body.stream === true;
  const chat = (upstreamId: string, cap: number | null) =>
    responsesToChatRequest(body, ctx.items, upstreamId, cap);
  const count = async (text: string) => {
    let messages: Obj[];
    try {
      messages = itemsToChatMessages(body.instructions, ctx.items);
    } catch {
      messages = ctx.items;
    }
    return countChatUsage(messages, text, body.tools);
  };
  /** The chat history's turn (a history session), once the charge is booked. */
  const remember = async (response: Obj) => {
    if (!ctx.onComplete) return;
    await ctx
      .onComplete(outputText(response))
      .catch((err) => ctx.log.error({ err }, 'saving chat history failed'));
  };
  /** The stored response (unless `store: false`). */
  const keep = async (response: Obj, model: string) => {
    if (body.store === false || typeof response?.id !== 'string') return;
    // The answer is paid for and delivered either way; a storage failure only loses the record.
    await ctx.store
      .save({
        id: response.id,
        userId: ctx.userId,
        model,
        status: String(response.status ?? 'completed'),
        inputItems: ctx.items,
        response,
        createdAt: Date.now(),
      })
      .catch((err) => ctx.log.error({ err, responseId: response.id }, 'storing the response failed'));
  };
  const save = async (response: Obj, model: string) => {
    await remember(response);
    await keep(response, model);
  };
  return {
    upstream(target, cap) {
      const accept = stream ? { accept: 'text/event-stream' } : undefined;
      const def = target.provider.def;
      if (def.wire === 'anthropic')
        return chatToAnthropicUpstream(chat(target.entry.upstreamId, cap), target, cap);
      if (def.capabilities?.responses) {
        const out: Obj = upstreamBody(body, GATEWAY_FIELDS, {
          model: target.entry.upstreamId,
          input: ctx.items,
        });
        if (cap !== null) out.max_output_tokens = cap;
        return { path: '/responses', body: JSON.stringify(out), headers: accept };
      }
      return {
        path: '/chat/completions',
        body: JSON.stringify(chat(target.entry.upstreamId, cap)),
        headers: accept,
      };
    },
    async respond(res, io) {
      const def = io.target.provider.def;
      const model = io.target.entry.id;
      const native = def.wire !== 'anthropic' && def.capabilities?.responses === true;
      const meta = newResponseMeta(body, model);
      if (stream) {
        if (native)
          return relayStream(
            res,
            io,
            responsesPassthroughCodec((r) => save(r, model)),
            count,
          );
        const decoder =
          def.wire === 'anthropic'
            ? anthropicChunkDecoder(model, usesJsonTool(chat(model, null)))
            : openAiChunkDecoder();
        return relayStream(
          res,
          io,
          composeCodec(
            decoder,
            responsesEventEncoder(meta, (r) => save(r, model)),
          ),
          count,
        );
      }
      const b = await readUpstreamJson(res, io);
      let response: Obj;
      let usage: Usage;
      if (native) {
        usage = usageFromOpenAi(b?.usage) ?? (await count(outputText(b)));
        response = b;
      } else if (def.wire === 'anthropic') {
        const exact = parseAnthropicUsage(b?.usage);
        const completion = anthropicToChatCompletion(b, model, exact, usesJsonTool(chat(model, null)));
        usage = exact ?? (await count(outputText(chatToResponse(completion, meta, emptyUsage()))));
        response = chatToResponse(completion, meta, usage);
      } else {
        usage = usageFromOpenAi(b?.usage) ?? emptyUsage();
        if (!b?.usage) usage = await count(outputText(chatToResponse(b, meta, usage)));
        response = chatToResponse(b, meta, usage);
      }
      // Stored as it settles (on SQLite both go to the same group commit and share its COMMIT); the
      // history's turn only once the charge is booked, so a request that fails to settle saves none.
      const [settled] = await Promise.all([io.settle(usage, 'ok'), keep(response, model)]);
      await remember(response);
      io.reply
        .code(200)
        .headers(io.gatewayHeaders())
        .type('application/json; charset=utf-8')
        .send(JSON.stringify({ ...response, gateway_usage: io.gatewayUsage(settled) }));
    },
  };
}

async function readUpstreamJson(res: UpstreamResponse, io: RespondIO): Promise<Obj> {
  const text = await readUpstreamText(res, io);
  try {
    return JSON.parse(text);
  } catch {
    throw notJson(io);
  }
}
