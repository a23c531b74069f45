import type { Usage } from '../billing/cost.js';
import type { UpstreamResponse } from '../providers/upstream.js';
import type { RespondIO } from './pipeline.js';
import { type SseEvent, SseSplitter } from './sse.js';
import { pumpBody, sseData, writeSseHead } from './stream-io.js';
import { usageFromOpenAi } from './usage.js';

type Obj = Record<string, any>;

/**
 * A stream codec turns the upstream's SSE events into the client's wire format, event by event,
 * and holds back the client's terminal event(s) until the charge is settled.
 */
export interface StreamCodec {
  /** Client text for one upstream event (may be empty). */
  push(e: SseEvent): string;
  /** The upstream's terminal event was seen. */
  readonly done: boolean;
  /** An upstream error event was seen (and already relayed in the client's format). */
  readonly error: unknown;
  /** Exact usage the upstream reported, if any (final counts only). */
  usage(): Usage | null;
  /** Exact prompt-side usage known before the end (Anthropic's message_start), for a stream cut short. */
  promptUsage?(): Usage | null;
  /** Generated text so far (for counting when the upstream reported no usage). */
  text(): string;
  /** Client text that closes a complete stream; called after settle. */
  finish(usage: Usage): string | Promise<string>;
  /** Client text for a stream the upstream broke off; called after settle. */
  fail(message: string): string;
}

/** Relay a stream through a codec: never buffering it, settling before the terminal event. */
export async function relayStream(
  res: UpstreamResponse,
  io: RespondIO,
  codec: StreamCodec,
  count: (text: string) => Promise<Usage>,
  /** Called with the generated text of a complete stream, before its terminal event (chat history). */
  onComplete?: (text: string) => Promise<void>,
): Promise<void> {
  const raw = io.reply.raw;
  io.reply.hijack();
  writeSseHead(raw, io.gatewayHeaders());
  const splitter = new SseSplitter();
  let out = '';
  let broke: Error | null = null;
  const onEvent = (e: SseEvent) => {
    out += codec.push(e);
  };
  // Each chunk is relayed as undici reads it: no promise per chunk.
  const body = res.body;
  const failed = await pumpBody(body, raw, io, (chunk) => {
    splitter.push(chunk, onEvent);
    if (!out) return true;
    const ok = raw.write(out);
    out = '';
    return ok;
  });
  if (failed && !io.clientGone()) broke = failed;
  try {
    if (!broke && !io.clientGone()) splitter.end(onEvent);
  } catch (err) {
    if (!io.clientGone()) broke = err as Error;
  }
  if (io.clientGone()) body.destroy();
  const gone = io.clientGone();
  const complete = codec.done && !broke && !codec.error;
  const text = codec.text();
  const exact = codec.usage();
  let counted = exact ?? (await count(text));
  const prompt = exact ? null : (codec.promptUsage?.() ?? null);
  if (prompt)
    counted = {
      ...counted,
      promptTokens: prompt.promptTokens,
      cachedTokens: prompt.cachedTokens,
      cacheWriteTokens: prompt.cacheWriteTokens,
    };
  const status = gone ? 'client_abort' : complete ? 'ok' : 'upstream_error';
  // A stream that delivered nothing and failed costs nothing.
  const delivered = text.length > 0 || exact !== null || complete;
  const settled = await io.settle(
    delivered ? counted : { ...counted, promptTokens: 0, completionTokens: 0 },
    status,
  );
  if (gone || raw.destroyed) return;
  if (complete && onComplete) await onComplete(text);
  if (complete) out += await codec.finish(settled.usage);
  else if (!codec.error) {
    out += codec.fail(
      broke
        ? `Provider ${io.target.provider.def.name} stream failed: ${broke.message || broke.name}`
        : `Provider ${io.target.provider.def.name} ended the stream early`,
    );
  }
  raw.end(out);
}

/** Upstream SSE → OpenAI chat chunks. */
export interface ChunkDecoder {
  decode(e: SseEvent): { chunks: Obj[]; done?: boolean; error?: Obj };
  /** Exact usage when the decoder tracks it itself (Anthropic); else read from chunks' `usage`. */
  usage?(): Usage | null;
  promptUsage?(): Usage | null;
}

/** OpenAI chat chunks → client wire. */
export interface ChunkEncoder {
  encode(chunk: Obj): string;
  finish(usage: Usage): string | Promise<string>;
  fail(message: string): string;
  upstreamError(err: Obj): string;
}

/** An OpenAI-shaped upstream's chat stream, as chunks. */
export function openAiChunkDecoder(): ChunkDecoder {
  return {
    decode(e) {
      if (e.data === null) return { chunks: [] };
      if (e.data === '[DONE]') return { chunks: [], done: true };
      let j: any;
      try {
        j = JSON.parse(e.data);
      } catch {
        return { chunks: [] };
      }
      if (j?.error) return { chunks: [], error: j.error };
      return { chunks: [j] };
    },
  };
}

/** Text a chat chunk generated (content, reasoning, tool names and arguments). */
export function chunkText(j: Obj): string {
  let s = '';
  for (const c of Array.isArray(j?.choices) ? j.choices : []) {
    const d = c?.delta;
    if (!d) continue;
    if (typeof d.content === 'string') s += d.content;
    if (typeof d.reasoning === 'string') s += d.reasoning;
    for (const tc of Array.isArray(d.tool_calls) ? d.tool_calls : []) {
      if (typeof tc?.function?.name === 'string') s += tc.function.name;
      if (typeof tc?.function?.arguments === 'string') s += tc.function.arguments;
    }
  }
  return s;
}

/** Compose a decoder (upstream wire → chunks) with an encoder (chunks → client wire). */
export function composeCodec(decoder: ChunkDecoder, encoder: ChunkEncoder): StreamCodec {
  let done = false;
  let error: unknown = null;
  let usage: Usage | null = null;
  const text: string[] = [];
  return {
    get done() {
      return done;
    },
    get error() {
      return error;
    },
    push(e) {
      if (done || error) return '';
      const r = decoder.decode(e);
      let out = '';
      for (const c of r.chunks) {
        const t = chunkText(c);
        if (t) text.push(t);
        if (c?.usage) usage = usageFromOpenAi(c.usage) ?? usage;
        out += encoder.encode(c);
      }
      if (r.error) {
        error = r.error;
        out += encoder.upstreamError(r.error);
      }
      if (r.done) done = true;
      return out;
    },
    usage: () => (decoder.usage ? decoder.usage() : usage),
    promptUsage: () => decoder.promptUsage?.() ?? null,
    text: () => text.join(''),
    finish: (u) => encoder.finish(u),
    fail: (m) => encoder.fail(m),
  };
}

/** Chunks → OpenAI chat SSE for the client (the usage chunk only when it asked for it). */
export function chatChunkEncoder(clientWantsUsage: boolean): ChunkEncoder {
  return {
    encode(j) {
      if (j && 'usage' in j && !clientWantsUsage) {
        if (!Array.isArray(j.choices) || j.choices.length === 0) return '';
        const { usage: _u, ...rest } = j;
        return sseData(rest);
      }
      return sseData(j);
    },
    finish: () => 'data: [DONE]\n\n',
    fail: (message) =>
      sseData({ error: { message, type: 'upstream_error', code: 'upstream_stream_error', param: null } }),
    upstreamError: (err) => sseData({ error: err }),
  };
}
