/**
 * Token estimates. The hold needs a cheap upper bound (no tokenizer on the hot path): a BPE token
 * covers at least one byte, so UTF-8 bytes bound the text's tokens; images count a fixed budget.
 * Exact counts (gpt-tokenizer, loaded lazily) are used only when an upstream reports no usage.
 */
const IMAGE_TOKENS = 3000;
const PER_MESSAGE = 8;

export function contentUpperBound(content: unknown): number {
  if (typeof content === 'string') return Buffer.byteLength(content);
  if (Array.isArray(content)) {
    let n = 0;
    for (const part of content) {
      if (part && typeof part === 'object') {
        const p = part as Record<string, unknown>;
        if (typeof p.text === 'string') n += Buffer.byteLength(p.text);
        else if (p.type === 'image_url' || p.type === 'input_image' || p.type === 'image') n += IMAGE_TOKENS;
        else n += Buffer.byteLength(JSON.stringify(p));
      } else if (typeof part === 'string') n += Buffer.byteLength(part);
    }
    return n;
  }
  if (content === null || content === undefined) return 0;
  return Buffer.byteLength(JSON.stringify(content));
}

export function messagesUpperBound(messages: readonly unknown[], extra?: unknown): number {
  let n = 0;
  for (const m of messages) {
    n += PER_MESSAGE;
    if (m && typeof m === 'object') {
      const msg = m as Record<string, unknown>;
      n += contentUpperBound(msg.content);
      if (msg.tool_calls) n += Buffer.byteLength(JSON.stringify(msg.tool_calls));
      if (typeof msg.name === 'string') n += Buffer.byteLength(msg.name);
    }
  }
  if (extra !== undefined && extra !== null) n += Buffer.byteLength(JSON.stringify(extra));
  return n;
}

type Counter = (text: string) => number;
let counter: Counter | null = null;

/** Exact-ish token count with gpt-tokenizer (o200k), loaded on first use. */
export async function countTokens(text: string): Promise<number> {
  if (!text) return 0;
  if (!counter) {
    const mod = await import('gpt-tokenizer');
    counter = (t: string) => mod.countTokens(t);
  }
  return counter(text);
}

/** Text of a chat prompt, for counting when an upstream reports no usage. */
export function promptText(messages: readonly unknown[]): { text: string; images: number; messages: number } {
  const parts: string[] = [];
  let images = 0;
  for (const m of messages) {
    const msg = m as Record<string, unknown>;
    const c = msg?.content;
    if (typeof c === 'string') parts.push(c);
    else if (Array.isArray(c)) {
      for (const p of c) {
        if (typeof p?.text === 'string') parts.push(p.text);
        else if (p?.type === 'image_url' || p?.type === 'input_image') images++;
      }
    }
    if (msg?.tool_calls) parts.push(JSON.stringify(msg.tool_calls));
  }
  return { text: parts.join('\n'), images, messages: messages.length };
}
