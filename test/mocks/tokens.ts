// Deterministic token accounting and reply generation shared by every protocol.
//
// prompt tokens  = whitespace-separated words of every text content + 3 per message
//                  (a system prompt / instructions counts as one message)
// reply          = `chunks` chunks of exactly 3 words ("Hello from mock ", "w4 w5 w6 ", …),
//                  capped at max_tokens words, cut before the first stop sequence
// completion     = number of reply words (+ reasoning tokens when an option asks for them)
import type { MockOptions, MockUsage } from './types.js';

export const PER_MESSAGE = 3;
export const TOOL_ARGUMENTS = '{"location":"Paris"}';

export function countWords(text: string): number {
  const t = text.trim();
  return t === '' ? 0 : t.split(/\s+/).length;
}

/** Text of a content value: a string, or the `text` of every part/block that has one (nested tool_result content too). */
export function textOf(content: unknown): string {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return '';
  const out: string[] = [];
  for (const part of content) {
    if (typeof part === 'string') out.push(part);
    else if (part && typeof part === 'object') {
      const p = part as Record<string, unknown>;
      if (typeof p.text === 'string') out.push(p.text);
      else if (p.type === 'tool_result') out.push(textOf(p.content));
    }
  }
  return out.join(' ');
}

export function messagesTokens(messages: unknown[]): number {
  let n = 0;
  for (const m of messages) {
    n += PER_MESSAGE;
    if (m && typeof m === 'object') n += countWords(textOf((m as { content?: unknown }).content));
  }
  return n;
}

/** Anthropic: top-level system (string or text blocks) counts as one message. */
export function anthropicPromptTokens(system: unknown, messages: unknown[]): number {
  const sys =
    system === undefined || system === null || system === '' ? 0 : PER_MESSAGE + countWords(textOf(system));
  return sys + messagesTokens(messages);
}

/** Responses API: `input` is a string (one message) or a list of items; `instructions` counts as one message. */
export function responsesPromptTokens(input: unknown, instructions: unknown): number {
  let n =
    typeof instructions === 'string' && instructions !== '' ? PER_MESSAGE + countWords(instructions) : 0;
  if (typeof input === 'string') n += PER_MESSAGE + countWords(input);
  else if (Array.isArray(input)) n += messagesTokens(input);
  return n;
}

/** Embeddings: words of each string input; token-id arrays count one token per id. */
export function embeddingInputs(input: unknown): { texts: string[]; tokens: number } {
  const list = Array.isArray(input) && input.length > 0 && typeof input[0] !== 'number' ? input : [input];
  const texts: string[] = [];
  let tokens = 0;
  for (const item of list) {
    if (typeof item === 'string') {
      texts.push(item);
      tokens += countWords(item);
    } else if (Array.isArray(item)) {
      texts.push(item.join(','));
      tokens += item.length;
    }
  }
  return { texts, tokens };
}

export interface ReplyPlan {
  /** Content chunks, each 3 words followed by a space (the last one may be shorter after a cap/stop). */
  chunks: string[];
  text: string;
  words: number;
  /** Why the reply ended early, if it did. */
  cut: 'length' | 'stop' | null;
  stopSequence: string | null;
}

const FIRST_WORDS = ['Hello', 'from', 'mock'];

export function planReply(chunks: number, cap: number | undefined, stop: unknown): ReplyPlan {
  const full = Math.max(0, Math.floor(chunks)) * 3;
  const limit =
    cap !== undefined && Number.isFinite(cap) && cap >= 0 ? Math.min(full, Math.floor(cap)) : full;
  let words = Array.from({ length: limit }, (_, i) => FIRST_WORDS[i] ?? `w${i + 1}`);
  let cut: ReplyPlan['cut'] = limit < full ? 'length' : null;
  let stopSequence: string | null = null;
  const stops = (Array.isArray(stop) ? stop : [stop]).filter(
    (s): s is string => typeof s === 'string' && s !== '',
  );
  if (stops.length > 0) {
    const joined = words.map((w) => `${w} `).join('');
    let at = -1;
    for (const s of stops) {
      const i = joined.indexOf(s);
      if (i >= 0 && (at < 0 || i < at)) {
        at = i;
        stopSequence = s;
      }
    }
    if (at >= 0) {
      // keep only the words that end before the stop sequence starts
      let pos = 0;
      const kept: string[] = [];
      for (const w of words) {
        if (pos + w.length > at) break;
        kept.push(w);
        pos += w.length + 1;
      }
      words = kept;
      cut = 'stop';
    }
  }
  const out: string[] = [];
  for (let i = 0; i < words.length; i += 3) out.push(`${words.slice(i, i + 3).join(' ')} `);
  return { chunks: out, text: out.join(''), words: words.length, cut, stopSequence };
}

/** Split the tool-call arguments into `n` fragments, the way streamed argument deltas arrive. */
export function argumentFragments(n: number): string[] {
  const parts = Math.max(1, Math.min(TOOL_ARGUMENTS.length, Math.floor(n) || 1));
  const size = Math.ceil(TOOL_ARGUMENTS.length / parts);
  const out: string[] = [];
  for (let i = 0; i < TOOL_ARGUMENTS.length; i += size) out.push(TOOL_ARGUMENTS.slice(i, i + size));
  return out;
}

/** OpenAI-style usage: cached/cache-write tokens are subsets of prompt_tokens; reasoning adds to completion. */
export function buildUsage(promptTokens: number, replyWords: number, opts: MockOptions): MockUsage {
  const cached = Math.min(Math.max(0, opts.cachedTokens ?? 0), promptTokens);
  const cacheWrite = Math.min(Math.max(0, opts.cacheWriteTokens ?? 0), promptTokens - cached);
  const reasoning = Math.max(0, opts.reasoningTokens ?? 0);
  const completion = replyWords + reasoning;
  return {
    prompt_tokens: promptTokens,
    completion_tokens: completion,
    total_tokens: promptTokens + completion,
    cached_tokens: cached,
    reasoning_tokens: reasoning,
    cache_write_tokens: cacheWrite,
  };
}

/** The tool to call, or null: OpenAI (`tools[].function.name`) and Anthropic (`tools[].name`) shapes. */
export function pickTool(tools: unknown, toolChoice: unknown): string | null {
  if (!Array.isArray(tools) || tools.length === 0) return null;
  if (toolChoice === 'none') return null;
  if (toolChoice && typeof toolChoice === 'object') {
    const c = toolChoice as { type?: string; name?: string; function?: { name?: string } };
    if (c.type === 'none') return null;
    if (c.function?.name) return c.function.name;
    if (c.type === 'tool' && c.name) return c.name;
  }
  const first = tools[0] as { name?: string; function?: { name?: string } };
  return first?.function?.name ?? first?.name ?? 'tool';
}
