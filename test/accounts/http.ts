import type { RunningGateway } from '../helpers/gateway.js';

/** A JSON request with a bearer key; returns status and parsed body. */
export async function call(
  g: RunningGateway,
  method: string,
  path: string,
  key: string | null,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: any; headers: Headers }> {
  const res = await fetch(g.url + path, {
    method,
    headers: {
      ...(key ? { authorization: `Bearer ${key}` } : {}),
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
      ...headers,
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  let parsed: any = text;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {}
  return { status: res.status, body: parsed, headers: res.headers };
}

/** Chat completion through the gateway (non-stream). */
export const chat = (
  g: RunningGateway,
  key: string,
  model = 'openai/gpt-4o-mini',
  headers: Record<string, string> = {},
) =>
  call(
    g,
    'POST',
    '/v1/chat/completions',
    key,
    { model, messages: [{ role: 'user', content: 'hi' }], max_tokens: 20 },
    headers,
  );
