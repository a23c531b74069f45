import type { Dispatcher } from 'undici';
import type { Usage } from '../../billing/cost.js';
import type { RespondIO } from '../pipeline.js';
import { type SseEvent, SseSplitter } from '../sse.js';
import { drain, SSE_HEADERS, sseData } from '../stream-io.js';
import { usageFromOpenAi } from '../usage.js';
import { countChatUsage } from './count.js';

/**
 * Relay an OpenAI-shaped SSE stream event by event (never buffering the stream), reading usage
 * from whichever chunk carries it, hiding the usage chunk from clients that did not ask for it,
 * then settling before the stream's end so the charge is booked when the client sees [DONE].
 */
export async function relayChatStream(
  res: Dispatcher.ResponseData,
  io: RespondIO,
  opts: { clientWantsUsage: boolean; messages: readonly unknown[]; tools?: unknown },
): Promise<void> {
  const raw = io.reply.raw;
  io.reply.hijack();
  raw.writeHead(200, { ...SSE_HEADERS, ...io.gatewayHeaders() });
  const splitter = new SseSplitter();
  let usage: Usage | null = null;
  const text: string[] = [];
  let out = '';
  let sawDone = false;
  let upstreamError: unknown = null;
  let broke: Error | null = null;

  const onEvent = (e: SseEvent) => {
    const data = e.data;
    if (data === null) {
      out += e.raw; // comments (keep-alives) pass through
      return;
    }
    if (data === '[DONE]') {
      sawDone = true; // held back until the charge is settled
      return;
    }
    let j: any;
    try {
      j = JSON.parse(data);
    } catch {
      return; // a malformed event is dropped rather than crash the client's parser
    }
    if (j?.error) {
      upstreamError = j.error;
      out += e.raw;
      return;
    }
    const choices = j?.choices;
    if (Array.isArray(choices)) {
      for (const c of choices) {
        const d = c?.delta;
        if (!d) continue;
        if (typeof d.content === 'string') text.push(d.content);
        if (typeof d.reasoning === 'string') text.push(d.reasoning);
        if (Array.isArray(d.tool_calls)) {
          for (const tc of d.tool_calls) {
            if (typeof tc?.function?.name === 'string') text.push(tc.function.name);
            if (typeof tc?.function?.arguments === 'string') text.push(tc.function.arguments);
          }
        }
      }
    }
    if (j && 'usage' in j) {
      if (j.usage) usage = usageFromOpenAi(j.usage) ?? usage;
      if (!opts.clientWantsUsage) {
        if (!Array.isArray(choices) || choices.length === 0) return;
        delete j.usage;
        out += sseData(j);
        return;
      }
    }
    out += e.raw;
  };

  try {
    for await (const chunk of res.body) {
      splitter.push(chunk as Buffer, onEvent);
      if (out) {
        const ok = raw.write(out);
        out = '';
        if (!ok) await drain(raw, io.signal);
      }
      if (io.clientGone()) break;
    }
    if (!io.clientGone()) splitter.end(onEvent);
  } catch (err) {
    if (!io.clientGone()) broke = err as Error;
  } finally {
    if (io.clientGone()) res.body.destroy();
  }

  const gone = io.clientGone();
  const complete = sawDone && !broke && !upstreamError;
  const counted = usage ?? (await countChatUsage(opts.messages, text.join(''), opts.tools));
  const status = gone ? 'client_abort' : complete ? 'ok' : 'upstream_error';
  // A stream that delivered nothing and failed costs nothing.
  const delivered = text.length > 0 || usage !== null || complete;
  await io.settle(delivered ? counted : { ...counted, promptTokens: 0, completionTokens: 0 }, status);
  if (gone || raw.destroyed) return;
  if (!complete && !upstreamError) {
    const message = broke
      ? `Provider ${io.target.provider.def.name} stream failed: ${broke.message || broke.name}`
      : `Provider ${io.target.provider.def.name} ended the stream early`;
    out += sseData({
      error: { message, type: 'upstream_error', code: 'upstream_stream_error', param: null },
    });
  }
  if (sawDone) out += 'data: [DONE]\n\n';
  raw.end(out);
}
