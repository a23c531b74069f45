import { type Micros, micros } from '../lib/money.js';

/** Prices in integer micro-dollars per million tokens; `request` and `image` per unit. */
export interface Price {
  prompt: number;
  completion: number;
  cacheRead: number | null;
  cacheWrite: number | null;
  reasoning: number | null;
  request: number | null;
  image: number | null;
}

export interface Usage {
  promptTokens: number;
  completionTokens: number;
  /** Prompt tokens served from the provider's cache (part of promptTokens). */
  cachedTokens: number;
  /** Prompt tokens written to the provider's cache (part of promptTokens). */
  cacheWriteTokens: number;
  /** Reasoning tokens (part of completionTokens). */
  reasoningTokens: number;
  /** Billable units priced per unit (images). */
  units: number;
}

export const emptyUsage = (): Usage => ({
  promptTokens: 0,
  completionTokens: 0,
  cachedTokens: 0,
  cacheWriteTokens: 0,
  reasoningTokens: 0,
  units: 0,
});

const M = 1_000_000n;

/** The one cost function: exact integer arithmetic, rounded up to the micro-dollar, once. */
export function costOf(u: Usage, p: Price): Micros {
  const cached = Math.min(u.cachedTokens, u.promptTokens);
  const written = Math.min(u.cacheWriteTokens, u.promptTokens - cached);
  const plainPrompt = u.promptTokens - cached - written;
  const reasoning = p.reasoning !== null ? Math.min(u.reasoningTokens, u.completionTokens) : 0;
  const plainCompletion = u.completionTokens - reasoning;
  const perMillion =
    BigInt(plainPrompt) * BigInt(p.prompt) +
    BigInt(cached) * BigInt(p.cacheRead ?? p.prompt) +
    BigInt(written) * BigInt(p.cacheWrite ?? p.prompt) +
    BigInt(plainCompletion) * BigInt(p.completion) +
    BigInt(reasoning) * BigInt(p.reasoning ?? p.completion);
  const tokens = (perMillion + M - 1n) / M;
  const units = BigInt(u.units) * BigInt(p.image ?? 0);
  return micros(Number(tokens + units) + (p.request ?? 0));
}

/** Largest completion budget whose worst-case cost fits in `available` after the prompt. */
export function affordableCompletionTokens(available: number, promptTokens: number, p: Price): number {
  const fixed = costOf({ ...emptyUsage(), promptTokens }, p);
  const left = available - fixed;
  if (left < 0) return -1;
  const perToken = Math.max(p.completion, p.reasoning ?? 0);
  if (perToken === 0) return Number.MAX_SAFE_INTEGER;
  // cost(c) = ceil((prompt + c*perToken)/1e6): stay safely below by flooring on the remainder.
  return Math.floor((left * 1_000_000) / perToken);
}
