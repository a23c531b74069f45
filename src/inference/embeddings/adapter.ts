import { emptyUsage } from '../../billing/cost.js';
import { countTokens } from '../estimate.js';
import type { Adapter } from '../pipeline.js';
import { respondJson } from '../respond-json.js';
import { upstreamBody } from '../upstream-body.js';
import { usageFromOpenAi } from '../usage.js';

const GATEWAY_FIELDS = new Set(['provider', 'models']);

/** Upper bound of an embeddings input's tokens (bytes bound BPE tokens; token-id arrays are exact). */
export function embeddingInputBound(input: unknown): number {
  if (typeof input === 'string') return Buffer.byteLength(input);
  if (!Array.isArray(input)) return 0;
  let n = 0;
  for (const item of input) {
    if (typeof item === 'string') n += Buffer.byteLength(item);
    else if (typeof item === 'number') n += 1;
    else if (Array.isArray(item)) n += item.length;
  }
  return n;
}

/** Our own count of an embeddings input, for an upstream that reported no usage. */
export async function countEmbeddingInput(input: unknown): Promise<number> {
  if (typeof input === 'string') return countTokens(input);
  if (!Array.isArray(input)) return 0;
  let n = 0;
  for (const item of input) {
    if (typeof item === 'string') n += await countTokens(item);
    else if (typeof item === 'number') n += 1;
    else if (Array.isArray(item)) n += item.length;
  }
  return n;
}

/** OpenAI embeddings, passed through (encoding_format included), billed per input token. */
export function embeddingsAdapter(body: Record<string, any>): Adapter {
  return {
    upstream(target) {
      const out = upstreamBody(body, GATEWAY_FIELDS, { model: target.entry.upstreamId });
      return { path: '/embeddings', body: JSON.stringify(out) };
    },
    respond(res, io) {
      return respondJson(res, io, {
        // Embeddings have no output tokens: whatever an upstream says, only input is billed.
        usageOf: (b) => {
          const u = usageFromOpenAi(b?.usage);
          return u ? { ...u, completionTokens: 0, reasoningTokens: 0 } : null;
        },
        countUsage: async () => ({ ...emptyUsage(), promptTokens: await countEmbeddingInput(body.input) }),
      });
    },
  };
}
