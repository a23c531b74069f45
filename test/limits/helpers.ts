import { randomBytes } from 'node:crypto';
import type { RunningGateway } from '../helpers/gateway.js';

export const MODEL = 'openai/gpt-4o-mini';

/** The limiter backends to test: memory always, Redis when TEST_REDIS_URL is set. */
export const BACKENDS: Array<'memory' | 'redis'> = process.env.TEST_REDIS_URL
  ? ['memory', 'redis']
  : ['memory'];

/** Env of a gateway on `backend`, with a key prefix of its own on the shared Redis server. */
export function backendEnv(backend: 'memory' | 'redis'): Record<string, string> {
  if (backend === 'memory') return {};
  const prefix = `gwztest:${randomBytes(6).toString('hex')}:`;
  return {
    REDIS_URL: process.env.TEST_REDIS_URL!,
    REDIS_PREFIX: prefix,
  };
}

export interface ChatResult {
  status: number;
  headers: Headers;
  body: any;
}

/** One chat completion over plain HTTP (headers and status exactly as sent). */
export async function chat(
  url: string,
  apiKey: string,
  opts: { maxTokens?: number; stream?: boolean; content?: string; model?: string } = {},
): Promise<ChatResult> {
  const res = await fetch(`${url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' },
    body: JSON.stringify({
      model: opts.model ?? MODEL,
      messages: [{ role: 'user', content: opts.content ?? 'hi' }],
      ...(opts.maxTokens !== undefined ? { max_tokens: opts.maxTokens } : {}),
      ...(opts.stream ? { stream: true } : {}),
    }),
  });
  const text = await res.text();
  let body: any = text;
  try {
    body = JSON.parse(text);
  } catch {}
  return { status: res.status, headers: res.headers, body };
}

export async function setLimits(g: RunningGateway, body: Record<string, unknown>): Promise<any> {
  const res = await g.admin('/admin/rate-limits', body);
  const j = await res.json();
  if (res.status !== 200) throw new Error(`set limits: ${res.status} ${JSON.stringify(j)}`);
  return j;
}

export async function getJson(url: string, key: string): Promise<{ status: number; body: any }> {
  const res = await fetch(url, { headers: { authorization: `Bearer ${key}` } });
  return { status: res.status, body: await res.json() };
}
