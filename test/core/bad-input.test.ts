import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, DATABASES } from '../helpers/db.js';
import { type RunningGateway, startGateway } from '../helpers/gateway.js';
import { type MockProvider, startMockProvider } from '../mocks/provider.js';

describe.each(DATABASES)('bad input changes nothing (%s)', (kind) => {
  let or: MockProvider;
  let g: RunningGateway;
  let user: { userId: string; apiKey: string; keyId: string };

  beforeAll(async () => {
    or = await startMockProvider('openrouter');
    or.models.push({ id: 'vendor/unpriced', context_length: 1000 });
    const db = await createTestDatabase(kind);
    g = await startGateway(db, {
      OPENROUTER_API_KEY: 'k',
      OPENROUTER_BASE_URL: or.url,
      BODY_LIMIT_BYTES: '4096',
    });
    user = await g.createUser(2);
  });
  afterAll(async () => {
    await g?.close();
    await g?.db.drop();
    await or?.close();
  });

  const raw = (body: string, key: string | null = user.apiKey, headers: Record<string, string> = {}) =>
    fetch(`${g.v1}/chat/completions`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        ...(key ? { authorization: `Bearer ${key}` } : {}),
        ...headers,
      },
      body,
    });
  const ok = { model: 'openai/gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] };

  const cases: Array<
    [string, () => Promise<Response>, number, Partial<{ type: string; param: string; code: string }>]
  > = [
    [
      'malformed JSON',
      () => raw('{"model": "x", "messages": ['),
      400,
      { type: 'invalid_request_error', code: 'invalid_json' },
    ],
    ['wrong type: model', () => raw(JSON.stringify({ ...ok, model: 42 })), 400, { param: 'model' }],
    [
      'wrong type: messages',
      () => raw(JSON.stringify({ ...ok, messages: 'hello' })),
      400,
      { param: 'messages' },
    ],
    ['wrong type: stream', () => raw(JSON.stringify({ ...ok, stream: 'yes' })), 400, { param: 'stream' }],
    [
      'wrong type: max_tokens',
      () => raw(JSON.stringify({ ...ok, max_tokens: -5 })),
      400,
      { param: 'max_tokens' },
    ],
    [
      'missing model',
      () => raw(JSON.stringify({ messages: ok.messages })),
      400,
      { param: 'model', code: 'missing_required_parameter' },
    ],
    ['empty messages', () => raw(JSON.stringify({ ...ok, messages: [] })), 400, { param: 'messages' }],
    [
      'message without role',
      () => raw(JSON.stringify({ ...ok, messages: [{ content: 'x' }] })),
      400,
      { param: 'messages.0.role' },
    ],
    [
      'oversized body',
      () => raw(JSON.stringify({ ...ok, messages: [{ role: 'user', content: 'x'.repeat(10_000) }] })),
      413,
      {},
    ],
    [
      'unknown model',
      () => raw(JSON.stringify({ ...ok, model: 'nobody/nothing' })),
      404,
      { code: 'model_not_found', param: 'model' },
    ],
    [
      'model without a price',
      () => raw(JSON.stringify({ ...ok, model: 'vendor/unpriced' })),
      400,
      { code: 'model_not_priced' },
    ],
    ['absent key', () => raw(JSON.stringify(ok), null), 401, { type: 'authentication_error' }],
    [
      'bad key',
      () => raw(JSON.stringify(ok), 'gw_live_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA'),
      401,
      { type: 'authentication_error' },
    ],
    [
      'not a gateway key',
      () => raw(JSON.stringify(ok), 'sk-something'),
      401,
      { type: 'authentication_error' },
    ],
    [
      'text body',
      () => raw('model=x', user.apiKey, { 'content-type': 'text/plain' }),
      400,
      { type: 'invalid_request_error' },
    ],
    [
      'unsupported content type',
      () => raw('<a/>', user.apiKey, { 'content-type': 'application/xml' }),
      415,
      {},
    ],
  ];

  it.each(cases)(
    '%s → %s in OpenAI shape, no upstream call, no ledger change',
    async (_name, send, status, fields) => {
      const callsBefore = or.calls.length;
      const ledgerBefore = await g.gw.billing.ledgerSum(user.userId);
      const res = await send();
      expect(res.status).toBe(status);
      const body = await res.json();
      expect(Object.keys(body)).toEqual(['error']);
      expect(typeof body.error.message).toBe('string');
      expect(body.error.message.length).toBeGreaterThan(3);
      expect(body.error).toHaveProperty('type');
      expect(body.error).toHaveProperty('code');
      expect(body.error).toHaveProperty('param');
      expect(body.error).toMatchObject(fields);
      expect(or.calls.length).toBe(callsBefore);
      expect(await g.gw.billing.ledgerSum(user.userId)).toBe(ledgerBefore);
      expect((await g.gw.billing.balance(user.userId))!.held_micros).toBe(0);
    },
  );

  it('a revoked key is refused on the very next request', async () => {
    const u = await g.createUser(1);
    expect((await raw(JSON.stringify(ok), u.apiKey)).status).toBe(200);
    await g.gw.accounts.store.updateKey(u.keyId, { is_active: 0 });
    g.gw.accounts.invalidateKey(u.keyId);
    const res = await raw(JSON.stringify(ok), u.apiKey);
    expect(res.status).toBe(401);
    expect((await res.json()).error.type).toBe('authentication_error');
  });

  it('errors never echo the presented key', async () => {
    const secret = 'gw_live_ZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZ';
    const res = await raw(JSON.stringify(ok), secret);
    expect(await res.text()).not.toContain('ZZZZZZZZ');
  });

  it('unknown routes and admin routes without admin rights answer in OpenAI shape', async () => {
    const r1 = await fetch(`${g.url}/v1/nope`);
    expect(r1.status).toBe(404);
    expect((await r1.json()).error.code).toBe('unknown_route');
    const r2 = await fetch(`${g.url}/admin/add_credits`, {
      method: 'POST',
      headers: { authorization: `Bearer ${user.apiKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ user_id: user.userId, credits: 100 }),
    });
    expect(r2.status).toBe(403);
    expect((await g.gw.billing.balance(user.userId))!.balance_micros).toBeLessThanOrEqual(2_000_000);
  });
});
