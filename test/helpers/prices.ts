import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Expected cost in micro-dollars, computed independently of the gateway's code: prices in USD per
 * million tokens, exact rational arithmetic, rounded up once.
 */
export function expectedMicros(
  promptTokens: number,
  completionTokens: number,
  promptUsdPerM: number,
  completionUsdPerM: number,
  cached = 0,
  cachedUsdPerM = promptUsdPerM,
): number {
  // price × 10^6 = micro-dollars per million tokens; tokens × that / 10^6 = micro-dollars
  const pp = BigInt(Math.round(promptUsdPerM * 1e6));
  const cp = BigInt(Math.round(completionUsdPerM * 1e6));
  const kp = BigInt(Math.round(cachedUsdPerM * 1e6));
  const total = BigInt(promptTokens - cached) * pp + BigInt(cached) * kp + BigInt(completionTokens) * cp;
  return Number((total + 999_999n) / 1_000_000n);
}

/** A gatewayz.config.json with prices for providers that publish none; returns its path. */
export function writePriceConfig(dir: string, extra: Record<string, unknown> = {}): string {
  const path = join(dir, 'gatewayz.config.json');
  writeFileSync(
    path,
    JSON.stringify({
      prices: {
        openai: { 'gpt-4o-mini': { prompt: 0.15, completion: 0.6 } },
        featherless: { 'Sao10K/L3-8B-Stheno-v3.2': { prompt: 0.1, completion: 0.2 } },
        portkey: { '@openai-prod/gpt-4o-mini': { prompt: 0.15, completion: 0.6 } },
      },
      ...extra,
    }),
  );
  return path;
}
