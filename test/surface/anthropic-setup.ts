// Shared setup for the Responses / Messages / Anthropic tests: a gateway over three mock providers,
// each speaking its own wire format (OpenAI: chat + Responses; OpenRouter: chat; Anthropic: Messages).

import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createTestDatabase, type DatabaseKind } from '../helpers/db.js';
import { type RunningGateway, startGateway } from '../helpers/gateway.js';
import { type MockProvider, type MockUsage, startMockProvider } from '../mocks/provider.js';

export interface PriceUsdPerM {
  prompt: number;
  completion: number;
  cache_read?: number;
  cache_write?: number;
}

/** Served natively by the Anthropic provider (Messages wire). */
export const CLAUDE = 'anthropic/claude-3-5-sonnet-20241022';
export const CLAUDE_PRICE: PriceUsdPerM = { prompt: 3, completion: 15, cache_read: 0.3, cache_write: 3.75 };
/** Served by OpenRouter (OpenAI chat wire) — its catalog price. */
export const OR_CLAUDE = 'anthropic/claude-3.5-sonnet';
export const OR_CLAUDE_PRICE: PriceUsdPerM = { prompt: 3, completion: 15 };
/** Served by OpenAI (chat + native Responses API). */
export const GPT = 'openai/gpt-4o-mini';
export const GPT_PRICE: PriceUsdPerM = { prompt: 0.15, completion: 0.6, cache_read: 0.075 };

export const ANTHROPIC_KEY = 'sk-ant-upstream';
export const OPENAI_KEY = 'sk-openai-upstream';
export const OR_KEY = 'sk-or-upstream';

/**
 * Expected cost in micro-dollars from what the mock upstream billed, computed independently of
 * the gateway's code: exact integer arithmetic, rounded up once.
 */
export function expectedCost(u: MockUsage, p: PriceUsdPerM): number {
  const m = (usd: number) => BigInt(Math.round(usd * 1e6));
  const read = u.cached_tokens ?? 0;
  const write = u.cache_write_tokens ?? 0;
  const plain = u.prompt_tokens - read - write;
  const total =
    BigInt(plain) * m(p.prompt) +
    BigInt(read) * m(p.cache_read ?? p.prompt) +
    BigInt(write) * m(p.cache_write ?? p.prompt) +
    BigInt(u.completion_tokens) * m(p.completion);
  return Number((total + 999_999n) / 1_000_000n);
}

export interface Surface {
  g: RunningGateway;
  anthropic: MockProvider;
  openai: MockProvider;
  openrouter: MockProvider;
  balance(userId: string): Promise<number>;
  held(userId: string): Promise<number>;
  close(): Promise<void>;
}

export async function startSurface(kind: DatabaseKind, opts: { sharedGpt?: boolean } = {}): Promise<Surface> {
  const anthropic = await startMockProvider('anthropic', { options: { apiKey: ANTHROPIC_KEY } });
  const openai = await startMockProvider('openai', { options: { apiKey: OPENAI_KEY } });
  const openrouter = await startMockProvider('openrouter', { options: { apiKey: OR_KEY } });
  // Each model id is served by exactly one provider, so every test knows which wire it exercises.
  // (sharedGpt: OpenRouter serves openai/gpt-4o-mini too, for fallback across wire formats)
  if (!opts.sharedGpt) openrouter.models = openrouter.models.filter((m) => m.id !== 'openai/gpt-4o-mini');
  const db = await createTestDatabase(kind);
  const config = join(db.dataDir, 'gatewayz.config.json');
  writeFileSync(
    config,
    JSON.stringify({
      prices: {
        openai: { 'gpt-4o-mini': { prompt: 0.15, completion: 0.6, cache_read: 0.075 } },
        anthropic: {
          'claude-3-5-sonnet-20241022': { prompt: 3, completion: 15, cache_read: 0.3, cache_write: 3.75 },
        },
      },
    }),
  );
  const g = await startGateway(db, {
    GATEWAYZ_CONFIG: config,
    ANTHROPIC_API_KEY: ANTHROPIC_KEY,
    ANTHROPIC_BASE_URL: anthropic.url,
    OPENAI_API_KEY: OPENAI_KEY,
    OPENAI_BASE_URL: openai.url,
    OPENROUTER_API_KEY: OR_KEY,
    OPENROUTER_BASE_URL: openrouter.url,
  });
  return {
    g,
    anthropic,
    openai,
    openrouter,
    balance: async (id) => Number((await g.gw.billing.balance(id))!.balance_micros),
    held: async (id) => Number((await g.gw.billing.balance(id))!.held_micros),
    async close() {
      await g.close();
      await db.drop();
      await Promise.all([anthropic.close(), openai.close(), openrouter.close()]);
    },
  };
}

/** The last call a mock served on `path` (e.g. '/v1/messages'). */
export const lastCall = (p: MockProvider, path: string) => {
  const c = [...p.calls].reverse().find((x) => x.path.startsWith(path));
  if (!c) throw new Error(`no call to ${path}`);
  return c;
};

/** A 1×1 PNG as a data URL and as Anthropic's base64 source. */
export const PNG_B64 =
  'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==';
export const PNG_DATA_URL = `data:image/png;base64,${PNG_B64}`;
