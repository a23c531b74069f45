import type { Usage } from '../../billing/cost.js';
import type { RequestAbort } from '../../lib/abort.js';
import { GatewayError } from '../../lib/errors.js';
import { errors as undiciErrors } from '../../providers/undici.js';
import type { UpstreamResponse } from '../../providers/upstream.js';
import type { RespondOutcome } from '../../routing/attempts.js';
import type { RespondIO } from '../pipeline.js';
import { type SseEvent, SseSplitter } from '../sse.js';
import { pumpBody, sseData, writeSseHead } from '../stream-io.js';
import { usageFromOpenAi } from '../usage.js';
import { countChatUsage } from './count.js';

/** Largest single SSE event accepted from an upstream; beyond it the stream counts as broken. */
export const MAX_SSE_EVENT_BYTES = 4 * 1024 * 1024;
/** Largest stream kept for the response cache. */
const MAX_CAPTURE_BYTES = 4 * 1024 * 1024;

/**
 * Relay an OpenAI-shaped SSE stream event by event (never buffering the stream), reading usage
 * from whichever chunk carries it, hiding the usage chunk from clients that did not ask for it,
 * then settling before the stream's end so the charge is booked when the client sees [DONE].
 *
 * The client's response starts with the first event worth sending. A stream that fails before
 * that (error event, broken, stalled, oversized) throws, so the attempt loop may retry or fall
 * back; once a byte went out, a failure becomes an SSE error event and what was delivered is charged.
 */
export async function relayChatStream(
  res: UpstreamResponse,
  io: RespondIO,
  opts: {
    clientWantsUsage: boolean;
    messages: readonly unknown[];
    tools?: unknown;
    /** Called with the first choice's text when the stream completed, before [DONE] goes out. */
    onComplete?: (text: string) => Promise<void>;
  },
): Promise<RespondOutcome> {
  const raw = io.reply.raw;
  let started = false;
  const start = () => {
    if (started) return;
    started = true;
    io.reply.hijack();
    writeSseHead(raw, io.gatewayHeaders());
  };
  const splitter = new SseSplitter();
  let usage: Usage | null = null;
  const text: string[] = [];
  /** The first choice's text, kept only for `onComplete` (chat history). */
  const firstChoice: string[] | null = opts.onComplete ? [] : null;
  let out = '';
  let sawData = false;
  let sawDone = false;
  let upstreamError: unknown = null;
  let broke: Error | null = null;
  const capture: string[] | null = io.remember ? [] : null;
  let captured = 0;

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
      if (started || sawData) out += e.raw;
      return;
    }
    sawData = true;
    const choices = j?.choices;
    if (Array.isArray(choices)) {
      for (const c of choices) {
        const d = c?.delta;
        if (!d) continue;
        if (typeof d.content === 'string') {
          text.push(d.content);
          if (firstChoice && (c.index ?? 0) === 0) firstChoice.push(d.content);
        }
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

  /** Send what the events produced; false when the client's socket is full (wait for 'drain'). */
  const flush = (): boolean => {
    // Leading comments wait for the first data event: until then nothing is sent and a retry stays possible.
    if (!started && !sawData) {
      if (out.length > 64 * 1024) out = ''; // keep-alives while waiting are not worth holding without bound
      return true;
    }
    if (!out) return true;
    start();
    if (capture && captured + out.length <= MAX_CAPTURE_BYTES) {
      capture.push(out);
      captured += out.length;
    } else if (capture) captured = Number.POSITIVE_INFINITY;
    const ok = raw.write(out);
    out = '';
    return ok;
  };

  // Each chunk is relayed as undici reads it: no promise per chunk.
  const body = res.body;
  const failed = await pumpBody(body, raw, io, (chunk) => {
    splitter.push(chunk, onEvent);
    if (splitter.pendingBytes > MAX_SSE_EVENT_BYTES) {
      broke = new Error(`an event larger than ${MAX_SSE_EVENT_BYTES} bytes`);
      broke.name = 'OversizedEvent';
      body.destroy();
      return true;
    }
    if (upstreamError && !started && !sawData) {
      body.destroy();
      return true;
    }
    return flush();
  });
  if (failed && !io.clientGone()) broke = failed;
  try {
    if (!broke && !io.clientGone()) splitter.end(onEvent);
  } catch (err) {
    if (!io.clientGone()) broke = err as Error;
  }
  if (io.clientGone() || broke || upstreamError) body.destroy();

  const gone = io.clientGone();
  const complete = sawDone && !broke && !upstreamError;
  const provider = io.target.provider.def.name;
  if (!started && !gone && !complete) {
    // Nothing reached the client: no charge, and the attempt loop may try again elsewhere.
    throw streamFailure(provider, broke, upstreamError, io.signal);
  }
  const counted = usage ?? (await countChatUsage(opts.messages, text.join(''), opts.tools));
  const status = gone ? 'client_abort' : complete ? 'ok' : 'upstream_error';
  // A stream that delivered nothing and failed costs nothing.
  const delivered = text.length > 0 || usage !== null || complete;
  await io.settle(delivered ? counted : { ...counted, promptTokens: 0, completionTokens: 0 }, status);
  if (gone || raw.destroyed) return { upstreamFailed: !complete && !gone };
  start();
  if (!complete && !upstreamError) {
    const e = streamFailure(provider, broke, null, io.signal);
    out += sseData({ error: { message: e.message, type: e.type, code: e.code, param: null } });
  }
  if (complete && opts.onComplete) await opts.onComplete(firstChoice!.join(''));
  if (complete && capture && captured <= MAX_CAPTURE_BYTES)
    io.remember?.('sse', capture.join('') + out, counted);
  if (sawDone) out += 'data: [DONE]\n\n';
  raw.end(out);
  return { upstreamFailed: !complete };
}

function streamFailure(
  provider: string,
  broke: Error | null,
  upstreamError: any,
  signal: RequestAbort,
): GatewayError {
  if (upstreamError) {
    const m = typeof upstreamError?.message === 'string' ? upstreamError.message : 'error event';
    return new GatewayError(502, `Provider ${provider} reported an error in the stream: ${m}`, {
      type: 'upstream_error',
      code: 'upstream_stream_error',
    });
  }
  if (signal.aborted)
    return new GatewayError(504, 'The request took longer than the gateway allows', {
      type: 'timeout_error',
      code: 'timeout',
    });
  if (broke instanceof undiciErrors.BodyTimeoutError)
    return new GatewayError(504, `Provider ${provider} stopped sending (stream idle too long)`, {
      type: 'timeout_error',
      code: 'upstream_timeout',
    });
  if (broke?.name === 'OversizedEvent')
    return new GatewayError(502, `Provider ${provider} sent ${broke.message}`, {
      type: 'upstream_error',
      code: 'upstream_body_too_large',
    });
  return new GatewayError(
    502,
    broke
      ? `Provider ${provider} stream failed: ${broke.message || broke.name}`
      : `Provider ${provider} ended the stream early`,
    { type: 'upstream_error', code: 'upstream_stream_error' },
  );
}
