import { countTokens } from 'gpt-tokenizer';
import { expect } from 'vitest';
import type { RunningGateway } from '../helpers/gateway.js';
import { expectedMicros } from '../helpers/prices.js';

export const PROMPT = [{ role: 'user', content: 'tell me something nice' }];
/** openai/gpt-4o-mini on every provider in these tests: USD per million tokens. */
export const PRICE = { prompt: 0.15, completion: 0.6 };

export interface ChatResult {
  status: number;
  headers: Headers;
  text: string;
  json: any;
  requestId: string;
  ms: number;
}

/** POST /v1/chat/completions over plain fetch (so the test sees exactly what a client receives). */
export async function chat(
  g: RunningGateway,
  apiKey: string,
  body: Record<string, unknown>,
  headers: Record<string, string> = {},
): Promise<ChatResult> {
  const t0 = performance.now();
  const res = await fetch(`${g.v1}/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ model: 'openai/gpt-4o-mini', messages: PROMPT, ...body }),
  });
  const text = await res.text();
  let json: any = null;
  try {
    json = JSON.parse(text);
  } catch {}
  return {
    status: res.status,
    headers: res.headers,
    text,
    json,
    requestId: res.headers.get('x-request-id') ?? '',
    ms: performance.now() - t0,
  };
}

/** Parsed SSE `data:` payloads of a stream body. */
export function sseEvents(text: string): Array<any | '[DONE]'> {
  const out: any[] = [];
  for (const block of text.split('\n\n')) {
    const data = block
      .split('\n')
      .filter((l) => l.startsWith('data:'))
      .map((l) => l.slice(5).trimStart())
      .join('\n');
    if (!data) continue;
    if (data === '[DONE]') out.push('[DONE]');
    else out.push(JSON.parse(data));
  }
  return out;
}

export function streamText(text: string): string {
  return sseEvents(text)
    .filter((e) => e !== '[DONE]' && Array.isArray(e.choices))
    .map((e) => e.choices.map((c: any) => c.delta?.content ?? '').join(''))
    .join('');
}

/** The money side of a request, read from the gateway's own database. */
export async function moneyOf(g: RunningGateway, userId: string, requestId: string) {
  const db = g.gw.db.db;
  const user = await db.selectFrom('users').selectAll().where('id', '=', userId).executeTakeFirstOrThrow();
  const ledger = await db.selectFrom('ledger').selectAll().where('user_id', '=', userId).execute();
  const records = await db
    .selectFrom('usage_records')
    .selectAll()
    .where('request_id', '=', requestId)
    .execute();
  const charged =
    ledger
      .filter((l) => l.reference === requestId && l.kind === 'usage')
      .reduce((a, l) => a - Number(l.amount_micros), 0) || 0;
  const holds = await db.selectFrom('holds').selectAll().where('user_id', '=', userId).execute();
  const u = user as any;
  return {
    charged,
    balance: Number(u.balance_micros) + Number(u.trial_balance_micros ?? 0),
    held: Number(u.held_micros),
    openHolds: holds.length,
    ledgerSum: ledger.reduce((a, l) => a + Number(l.amount_micros), 0),
    records,
  };
}

/** A failed request: nothing charged, hold released, balance == Σ ledger, one zero-cost record. */
export async function expectNoCharge(
  g: RunningGateway,
  user: { userId: string },
  r: ChatResult,
  initial: number,
) {
  const m = await moneyOf(g, user.userId, r.requestId);
  expect(m.charged).toBe(0);
  expect(m.balance).toBe(initial);
  expect(m.held).toBe(0);
  expect(m.openHolds).toBe(0);
  expect(m.ledgerSum).toBe(m.balance);
  for (const rec of m.records) expect(Number(rec.cost_micros)).toBe(0);
  return m;
}

/** A served request: charged exactly the serving provider's usage at its price. */
export async function expectCharged(
  g: RunningGateway,
  user: { userId: string },
  r: ChatResult,
  initial: number,
  usage: { prompt_tokens: number; completion_tokens: number },
) {
  const m = await moneyOf(g, user.userId, r.requestId);
  const cost = expectedMicros(usage.prompt_tokens, usage.completion_tokens, PRICE.prompt, PRICE.completion);
  expect(cost).toBeGreaterThan(0);
  expect(m.charged).toBe(cost);
  expect(m.balance).toBe(initial - cost);
  expect(m.held).toBe(0);
  expect(m.ledgerSum).toBe(m.balance);
  expect(m.records).toHaveLength(1);
  expect(Number(m.records[0]!.cost_micros)).toBe(cost);
  return m;
}

/** A stream cut mid-way: charged exactly the tokens the client received (tokenizer count), at the price. */
export async function expectChargedDelivered(
  g: RunningGateway,
  user: { userId: string },
  r: ChatResult,
  initial: number,
  fullUsage: { prompt_tokens: number; completion_tokens: number },
) {
  const m = await moneyOf(g, user.userId, r.requestId);
  expect(m.records).toHaveLength(1);
  const rec = m.records[0]!;
  const delivered = streamText(r.text);
  expect(delivered.length).toBeGreaterThan(0);
  expect(Number(rec.completion_tokens)).toBe(countTokens(delivered));
  expect(Number(rec.completion_tokens)).toBeLessThan(fullUsage.completion_tokens);
  const cost = expectedMicros(
    Number(rec.prompt_tokens),
    Number(rec.completion_tokens),
    PRICE.prompt,
    PRICE.completion,
  );
  expect(cost).toBeGreaterThan(0);
  expect(m.charged).toBe(cost);
  expect(Number(rec.cost_micros)).toBe(cost);
  expect(m.balance).toBe(initial - cost);
  expect(m.held).toBe(0);
  expect(m.ledgerSum).toBe(m.balance);
  return m;
}

/** Deterministic PRNG (mulberry32) for balancer tests. */
export function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
