import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, DATABASES } from '../helpers/db.js';
import { type RunningGateway, startGateway } from '../helpers/gateway.js';
import { type MockProvider, startMockProvider } from '../mocks/provider.js';
import { call, chat } from './http.js';

describe.each(DATABASES)('key restrictions (%s)', (kind) => {
  let g: RunningGateway;
  let proxied: RunningGateway;
  let or: MockProvider;
  let owner: { userId: string; apiKey: string };
  let proxiedOwner: { userId: string; apiKey: string };
  const newKey = async (settings: Record<string, unknown>, gw = g, o = owner) => {
    const r = await call(gw, 'POST', '/user/api-keys', o.apiKey, {
      key_name: `k-${Math.random().toString(36).slice(2)}`,
      ...settings,
    });
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    return r.body as { api_key: string; key: { id: string } };
  };
  beforeAll(async () => {
    or = await startMockProvider('openrouter');
    const env = { OPENROUTER_API_KEY: 'or-key', OPENROUTER_BASE_URL: or.url, KEY_CACHE_TTL_MS: '60000' };
    g = await startGateway(await createTestDatabase(kind), env);
    owner = await g.createUser(10);
    proxied = await startGateway(await createTestDatabase(kind), { ...env, TRUSTED_PROXIES: '127.0.0.1' });
    proxiedOwner = await proxied.createUser(1);
  });
  afterAll(async () => {
    await g?.close();
    await g?.db.drop();
    await proxied?.close();
    await proxied?.db.drop();
    await or?.close();
  });

  it('expiry: works until expires_at, then 401', async () => {
    const k = await newKey({ expiration_days: 0.5 / 86_400 });
    expect((await call(g, 'GET', '/user/balance', k.api_key)).status).toBe(200);
    await new Promise((r) => setTimeout(r, 600));
    const r = await call(g, 'GET', '/user/balance', k.api_key);
    expect(r.status).toBe(401);
    expect(r.body.error.code).toBe('expired_api_key');
  });

  it('max_requests: counted atomically, 429 at the cap; uncapped keys are not written', async () => {
    const k = await newKey({ max_requests: 2 });
    const results = await Promise.all([1, 2, 3, 4].map(() => call(g, 'GET', '/user/balance', k.api_key)));
    expect(results.map((r) => r.status).sort()).toEqual([200, 200, 429, 429]);
    const r = await call(g, 'GET', '/user/balance', k.api_key);
    expect(r.status).toBe(429);
    expect(r.body.error.code).toBe('key_request_limit_reached');
    const row = await g.gw.db.db
      .selectFrom('api_keys')
      .select('request_count')
      .where('id', '=', k.key.id)
      .executeTakeFirstOrThrow();
    expect(Number(row.request_count)).toBe(2);
    const free = await newKey({});
    for (let i = 0; i < 3; i++)
      expect((await call(g, 'GET', '/user/balance', free.api_key)).status).toBe(200);
    const frow = await g.gw.db.db
      .selectFrom('api_keys')
      .select('request_count')
      .where('id', '=', free.key.id)
      .executeTakeFirstOrThrow();
    expect(Number(frow.request_count)).toBe(0);
  });

  it('checks run in the seed order: the request cap comes before the IP allowlist', async () => {
    const k = await newKey({ max_requests: 1, ip_allowlist: ['10.1.2.3'] });
    expect((await call(g, 'GET', '/user/balance', k.api_key)).status).toBe(403);
    expect((await call(g, 'GET', '/user/balance', k.api_key)).status).toBe(429);
  });

  it('IP allowlist: exact and CIDR, IPv4 and IPv6; X-Forwarded-For ignored from an untrusted peer', async () => {
    expect(
      (await call(g, 'GET', '/user/balance', (await newKey({ ip_allowlist: ['127.0.0.1'] })).api_key)).status,
    ).toBe(200);
    expect(
      (await call(g, 'GET', '/user/balance', (await newKey({ ip_allowlist: ['127.0.0.0/8'] })).api_key))
        .status,
    ).toBe(200);
    const denied = await call(
      g,
      'GET',
      '/user/balance',
      (await newKey({ ip_allowlist: ['10.0.0.0/8', '::1'] })).api_key,
    );
    expect(denied.status).toBe(403);
    expect(denied.body.error.code).toBe('ip_not_allowed');
    // The peer is not a trusted proxy, so a forged X-Forwarded-For changes nothing.
    const spoof = await newKey({ ip_allowlist: ['203.0.113.5'] });
    expect(
      (await call(g, 'GET', '/user/balance', spoof.api_key, undefined, { 'x-forwarded-for': '203.0.113.5' }))
        .status,
    ).toBe(403);
  });

  it('IP allowlist behind a trusted proxy uses X-Forwarded-For (IPv4 and IPv6 CIDR)', async () => {
    const v6 = await newKey({ ip_allowlist: ['2001:db8::/32'] }, proxied, proxiedOwner);
    expect(
      (
        await call(proxied, 'GET', '/user/balance', v6.api_key, undefined, {
          'x-forwarded-for': '2001:db8::7',
        })
      ).status,
    ).toBe(200);
    expect(
      (
        await call(proxied, 'GET', '/user/balance', v6.api_key, undefined, {
          'x-forwarded-for': '2001:dead::1',
        })
      ).status,
    ).toBe(403);
    const v4 = await newKey({ ip_allowlist: ['203.0.113.5'] }, proxied, proxiedOwner);
    expect(
      (
        await call(proxied, 'GET', '/user/balance', v4.api_key, undefined, {
          'x-forwarded-for': '203.0.113.5',
        })
      ).status,
    ).toBe(200);
    expect(
      (
        await call(proxied, 'GET', '/user/balance', v4.api_key, undefined, {
          'x-forwarded-for': '203.0.113.6',
        })
      ).status,
    ).toBe(403);
  });

  it('domain restriction: Origin or Referer host equal to the domain or a subdomain of it', async () => {
    const k = (await newKey({ domain_referrers: ['example.com'] })).api_key;
    const get = (h: Record<string, string>) => call(g, 'GET', '/user/balance', k, undefined, h);
    expect((await get({ origin: 'https://example.com' })).status).toBe(200);
    expect((await get({ origin: 'https://app.example.com' })).status).toBe(200);
    expect((await get({ referer: 'https://deep.app.example.com/page?x=1' })).status).toBe(200);
    for (const h of [
      {} as Record<string, string>,
      { origin: 'https://badexample.com' },
      { origin: 'https://example.com.evil.io' },
      { referer: 'https://evil.io/?https://example.com' },
    ]) {
      const r = await get(h);
      expect(r.status, JSON.stringify(h)).toBe(403);
      expect(r.body.error.code).toBe('domain_not_allowed');
    }
  });

  it('scopes: {"read":["*"]} may read but not write; wildcards and per-resource grants', async () => {
    const ro = (await newKey({ scope_permissions: { read: ['*'] } })).api_key;
    expect((await call(g, 'GET', '/user/balance', ro)).status).toBe(200);
    const w = await call(g, 'POST', '/user/api-keys', ro, { key_name: 'nope' });
    expect(w.status).toBe(403);
    expect(w.body.error.code).toBe('insufficient_scope');
    expect((await chat(g, ro)).status).toBe(403);
    const chatOnly = (await newKey({ scope_permissions: { write: ['chat'], read: ['balance'] } })).api_key;
    expect((await chat(g, chatOnly)).status).toBe(200);
    expect((await call(g, 'GET', '/user/balance', chatOnly)).status).toBe(200);
    expect((await call(g, 'GET', '/user/api-keys', chatOnly)).status).toBe(403);
    const keysAdmin = (await newKey({ scope_permissions: { '*': ['api_keys'] } })).api_key;
    expect((await call(g, 'GET', '/user/api-keys', keysAdmin)).status).toBe(200);
    expect((await chat(g, keysAdmin)).status).toBe(403);
  });

  it('allowed models: listed (or matching a prefix*) models pass, others 403 before anything is held', async () => {
    const k = (await newKey({ allowed_models: ['openai/gpt-4o-mini'] })).api_key;
    expect((await chat(g, k, 'openai/gpt-4o-mini')).status).toBe(200);
    const calls = or.calls.length;
    const r = await chat(g, k, 'anthropic/claude-3.5-sonnet');
    expect(r.status).toBe(403);
    expect(r.body.error.code).toBe('model_not_allowed');
    expect(or.calls.length).toBe(calls);
    const wild = (await newKey({ allowed_models: ['anthropic/*'] })).api_key;
    expect((await chat(g, wild, 'anthropic/claude-3.5-sonnet')).status).toBe(200);
    expect((await chat(g, wild, 'openai/gpt-4o-mini')).status).toBe(403);
  });

  it('per-key spend cap: requests stop with 402 once the key has spent max_spend_usd', async () => {
    const k = await newKey({ max_spend_usd: 0.000001 });
    expect((await chat(g, k.api_key)).status).toBe(200);
    const r = await chat(g, k.api_key);
    expect(r.status).toBe(402);
    expect(r.body.error.code).toBe('key_spend_limit_reached');
    // Raising the cap takes effect on the next request.
    expect(
      (await call(g, 'PUT', `/user/api-keys/${k.key.id}`, owner.apiKey, { max_spend_usd: 1 })).status,
    ).toBe(200);
    expect((await chat(g, k.api_key)).status).toBe(200);
    const other = (await newKey({})).api_key;
    expect((await chat(g, other)).status).toBe(200);
  });
});
