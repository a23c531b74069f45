// POST /v1/embeddings and POST /v1/images/generations (OpenAI shapes).
import { findModel, openrouterCost } from './catalog.js';
import { sendError } from './errors.js';
import { type Ctx, intact, nowSec, randomId, sendJson } from './http.js';
import { embeddingInputs } from './tokens.js';
import type { MockUsage } from './types.js';

export const EMBEDDING_DIMENSIONS = 8;

/** Deterministic unit-ish vector for a text (FNV-1a seeded LCG), float32-exact so base64 and float agree. */
export function embeddingFor(text: string): number[] {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  const out: number[] = [];
  for (let i = 0; i < EMBEDDING_DIMENSIONS; i++) {
    h = (Math.imul(h, 1664525) + 1013904223) >>> 0;
    out.push(Math.fround((h / 0xffffffff) * 2 - 1));
  }
  return out;
}

export function toBase64(vec: number[]): string {
  const buf = Buffer.alloc(vec.length * 4);
  vec.forEach((v, i) => {
    buf.writeFloatLE(v, i * 4);
  });
  return buf.toString('base64');
}

export function handleEmbeddings(ctx: Ctx): void {
  const b = ctx.body;
  if (!b || typeof b !== 'object' || typeof b.model !== 'string' || b.model === '') {
    sendError(ctx, 400, 'you must provide a model parameter', { param: 'model', code: null });
    return;
  }
  const { texts, tokens } = embeddingInputs(b.input);
  if (b.input === undefined || texts.length === 0) {
    sendError(ctx, 400, "'input' is a required property", { param: 'input', code: null });
    return;
  }
  const base64 = b.encoding_format === 'base64';
  const data = texts.map((t, index) => {
    const vec = embeddingFor(t);
    return { object: 'embedding', index, embedding: base64 ? toBase64(vec) : vec };
  });
  const usage: MockUsage = { prompt_tokens: tokens, completion_tokens: 0, total_tokens: tokens };
  const wire: Record<string, unknown> = { prompt_tokens: tokens, total_tokens: tokens };
  if (ctx.kind === 'openrouter') {
    usage.cost = openrouterCost(usage, findModel(ctx.models, b.model)?.pricing);
    wire.cost = usage.cost;
  }
  ctx.call.usage = usage;
  const noUsage = ctx.fault?.type === 'no-usage';
  ctx.call.usageReported = !noUsage && intact(ctx, false);
  const idField = ctx.kind === 'openrouter' ? { id: `gen-emb-${nowSec()}-${randomId('', 20)}` } : {};
  sendJson(ctx, 200, {
    ...idField,
    object: 'list',
    data,
    model: b.model,
    ...(noUsage ? {} : { usage: wire }),
  });
}

// 1×1 transparent PNG
const PNG_1X1 =
  'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII=';

export function handleImages(ctx: Ctx): void {
  const b = ctx.body;
  if (!b || typeof b !== 'object' || typeof b.prompt !== 'string' || b.prompt === '') {
    sendError(ctx, 400, "'prompt' is a required property", { param: 'prompt', code: null });
    return;
  }
  const n = Number.isInteger(b.n) && b.n > 0 ? Math.min(b.n, 10) : 1;
  const b64 = b.response_format === 'b64_json';
  const data = Array.from({ length: n }, () => ({
    ...(b64 ? { b64_json: PNG_1X1 } : { url: `https://images.mock.invalid/${randomId('img-', 24)}.png` }),
    revised_prompt: b.prompt,
  }));
  sendJson(ctx, 200, { created: nowSec(), data });
}
