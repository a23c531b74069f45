import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/config.js';
import { routeTable } from '../../src/http/auth.js';
import { createTestDatabase, DATABASES } from '../helpers/db.js';
import { ADMIN_KEY, type RunningGateway, startGateway } from '../helpers/gateway.js';
import { type MockProvider, startMockProvider } from '../mocks/provider.js';
import { call, chat } from './http.js';
import { APP_ID, mint, type PrivyKeys, privyKeys, tamper, unsigned } from './privy-tokens.js';

const INFERENCE_ROUTES = [
  'POST /v1/chat/completions',
  'POST /v1/responses',
  'POST /v1/messages',
  'POST /v1/embeddings',
  'POST /v1/images/generations',
  'POST /images/generate',
];

/** Sign up (or in) through POST /auth/privy, as the dashboard does before using the token. */
async function signUp(g: RunningGateway, token: string): Promise<{ user_id: string; api_key?: string }> {
  const r = await call(g, 'POST', '/auth/privy', null, { token, email: `${Math.random()}@example.com` });
  expect(r.status, JSON.stringify(r.body)).toBe(200);
  return r.body;
}

describe.each(DATABASES)('Privy access tokens as sessions (%s)', (kind) => {
  let g: RunningGateway;
  let or: MockProvider;
  let keys: PrivyKeys;
  let did: string;
  let token: string;
  let user: { user_id: string; api_key?: string };

  beforeAll(async () => {
    keys = await privyKeys();
    or = await startMockProvider('openrouter');
    g = await startGateway(await createTestDatabase(kind), {
      PRIVY_APP_ID: APP_ID,
      PRIVY_VERIFICATION_KEY: keys.publicPem,
      PRIVY_CLIENT_ID: 'client-web',
      PRIVY_API_URL: 'https://auth.example.test/',
      SIGNUP_CREDITS_USD: '2',
      OPENROUTER_API_KEY: 'or-key',
      OPENROUTER_BASE_URL: or.url,
      // Long, so that a session outliving its token's expiry would show.
      KEY_CACHE_TTL_MS: '60000',
      AUTH_FAILURES_PER_MINUTE: '1000',
    });
    did = `did:privy:${Math.random().toString(36).slice(2)}`;
    token = await mint(keys, { sub: did });
    user = await signUp(g, token);
  });
  afterAll(async () => {
    await g?.close();
    await g?.db.drop();
    await or?.close();
  });

  it('a valid token reaches user routes as the signed-up user', async () => {
    const bal = await call(g, 'GET', '/user/balance', token);
    expect(bal.status, JSON.stringify(bal.body)).toBe(200);
    expect(bal.body.user_id).toBe(user.user_id);
    expect(bal.body.credits).toBe(2);
    const created = await call(g, 'POST', '/user/api-keys', token, { key_name: 'made by a session' });
    expect(created.status).toBe(201);
    expect(created.body.api_key).toMatch(/^gw_live_/);
    const list = await call(g, 'GET', '/user/api-keys', token);
    expect(list.body.keys.map((k: any) => k.key_name)).toContain('made by a session');
    // The key a session made is an ordinary key of the same user.
    const viaKey = await call(g, 'GET', '/user/balance', created.body.api_key);
    expect(viaKey.body.user_id).toBe(user.user_id);
  });

  it('admin routes follow the user role: refused for a user, allowed once the role permits', async () => {
    const t = await mint(keys);
    const u = await signUp(g, t);
    const refused = await call(g, 'GET', '/admin/monitor', t);
    expect(refused.status).toBe(403);
    expect(refused.body.error.code).toBe('permission_denied');
    expect((await call(g, 'GET', '/admin/users', t)).status).toBe(403);

    expect((await g.admin(`/admin/users/${u.user_id}`, { role: 'developer' }, 'PATCH')).status).toBe(200);
    // The role change reaches the cached session at once (not after KEY_CACHE_TTL_MS).
    expect((await call(g, 'GET', '/admin/monitor', t)).status).toBe(200);
    expect((await call(g, 'GET', '/admin/users', t)).status).toBe(403);

    expect((await g.admin(`/admin/users/${u.user_id}`, { role: 'admin' }, 'PATCH')).status).toBe(200);
    expect((await call(g, 'GET', '/admin/users', t)).status).toBe(200);
  });

  it('every inference route refuses a session with 401 in its own error shape; the same user’s key works', async () => {
    const inference = routeTable(g.gw.app)
      .filter((r) => r.inference)
      .map((r) => `${r.method} ${r.url}`);
    expect(inference.sort()).toEqual([...INFERENCE_ROUTES].sort());
    const before = await call(g, 'GET', '/user/balance', token);
    const calls = or.calls.length;
    const body = {
      model: 'openai/gpt-4o-mini',
      messages: [{ role: 'user', content: 'hi' }],
      max_tokens: 16,
      input: 'hi',
      prompt: 'a cat',
    };
    for (const r of INFERENCE_ROUTES) {
      const [method, path] = r.split(' ') as [string, string];
      const res = await call(g, method, path, token, body);
      expect(res.status, r).toBe(401);
      if (path === '/v1/messages') {
        expect(res.body.type, r).toBe('error');
        expect(res.body.error.type, r).toBe('authentication_error');
        expect(res.body.error.message, r).toMatch(/API key/);
      } else {
        expect(res.body.error, r).toMatchObject({ type: 'authentication_error', code: 'api_key_required' });
        expect(res.body.error.message, r).toMatch(/API key/);
      }
    }
    // Anthropic clients send x-api-key: a token there is refused the same way.
    const viaHeader = await call(g, 'POST', '/v1/messages', null, body, { 'x-api-key': token });
    expect(viaHeader.status).toBe(401);
    expect(viaHeader.body.error.type).toBe('authentication_error');
    expect(or.calls.length).toBe(calls);
    const after = await call(g, 'GET', '/user/balance', token);
    expect(after.body.credits).toBe(before.body.credits);

    const ok = await chat(g, user.api_key!);
    expect(ok.status, JSON.stringify(ok.body)).toBe(200);
    expect(or.calls.length).toBe(calls + 1);
  });

  it('a session ends with its token: the cache never outlives exp', async () => {
    const t = await mint(keys, { sub: did, expSeconds: 2 });
    expect((await call(g, 'GET', '/user/balance', t)).status).toBe(200);
    const exp = JSON.parse(Buffer.from(t.split('.')[1]!, 'base64url').toString()).exp as number;
    await new Promise((r) => setTimeout(r, Math.max(0, exp * 1000 - Date.now()) + 300));
    const r = await call(g, 'GET', '/user/balance', t);
    expect(r.status).toBe(401);
    expect(r.body.error.code).toBe('invalid_api_key');
  });

  it('expired, forged and foreign tokens are refused like a wrong key', async () => {
    const forged: Record<string, string> = {
      expired: await mint(keys, { sub: did, expSeconds: -60 }),
      wrongAudience: await mint(keys, { sub: did, aud: 'someone-elses-app' }),
      wrongIssuer: await mint(keys, { sub: did, iss: 'evil.example' }),
      tampered: tamper(await mint(keys), did),
      algNone: unsigned(did),
      otherKey: await mint(await privyKeys(), { sub: did }),
      notPrivySub: await mint(keys, { sub: 'alice' }),
    };
    for (const [name, t] of Object.entries(forged)) {
      const r = await call(g, 'GET', '/user/balance', t);
      expect(r.status, name).toBe(401);
      expect(r.body.error.code, name).toBe('invalid_api_key');
    }
  });

  it('a Privy user who never signed up is told to sign up first', async () => {
    const stranger = await mint(keys);
    const r = await call(g, 'GET', '/user/balance', stranger);
    expect(r.status).toBe(401);
    expect(r.body.error.code).toBe('privy_user_not_found');
    expect(r.body.error.message).toMatch(/POST \/auth\/privy/);
    // After signing up the same token works (a refusal is not cached).
    await signUp(g, stranger);
    expect((await call(g, 'GET', '/user/balance', stranger)).status).toBe(200);
  });

  it('a suspended user is refused at once; a deleted account no longer signs in', async () => {
    const t = await mint(keys);
    const u = await signUp(g, t);
    expect((await call(g, 'GET', '/user/balance', t)).status).toBe(200);
    expect((await g.admin(`/admin/users/${u.user_id}`, { status: 'suspended' }, 'PATCH')).status).toBe(200);
    const r = await call(g, 'GET', '/user/balance', t);
    expect(r.status).toBe(403);
    expect(r.body.error.code).toBe('account_suspended');
    expect((await g.admin(`/admin/users/${u.user_id}`, { status: 'active' }, 'PATCH')).status).toBe(200);
    expect((await call(g, 'GET', '/user/balance', t)).status).toBe(200);

    const del = await call(g, 'DELETE', '/user/account', t, { confirmation: 'DELETE_ACCOUNT' });
    expect(del.status, JSON.stringify(del.body)).toBe(200);
    const gone = await call(g, 'GET', '/user/balance', t);
    expect(gone.status).toBe(401);
    expect(gone.body.error.code).toBe('privy_user_not_found');
  });

  it('the bootstrap admin key and API keys authenticate as before', async () => {
    expect((await call(g, 'GET', '/admin/monitor', ADMIN_KEY)).status).toBe(200);
    expect((await call(g, 'GET', '/user/balance', user.api_key!)).status).toBe(200);
  });

  it('GET /auth/config and the dashboard CSP carry the Privy settings', async () => {
    const r = await call(g, 'GET', '/auth/config', null);
    expect(r.status).toBe(200);
    expect(r.body).toEqual({
      privy: { app_id: APP_ID, client_id: 'client-web', api_url: 'https://auth.example.test' },
    });
    const res = await fetch(`${g.url}/dashboard/`);
    expect(res.headers.get('content-security-policy')).toMatch(
      /(^|; )connect-src 'self' https:\/\/auth\.example\.test;/,
    );
  });
});

describe.each(DATABASES)('Privy sessions: brute force and configuration (%s)', (kind) => {
  let g: RunningGateway;
  let plain: RunningGateway;
  let keys: PrivyKeys;
  beforeAll(async () => {
    keys = await privyKeys();
    g = await startGateway(await createTestDatabase(kind), {
      PRIVY_APP_ID: APP_ID,
      PRIVY_VERIFICATION_KEY: keys.publicPem,
      AUTH_FAILURES_PER_MINUTE: '4',
    });
    plain = await startGateway(await createTestDatabase(kind));
  });
  afterAll(async () => {
    for (const gw of [g, plain]) {
      await gw?.close();
      await gw?.db.drop();
    }
  });

  it('a valid token of an unknown user is not a failure; forged tokens are, until the IP gets 429', async () => {
    for (let i = 0; i < 6; i++)
      expect((await call(g, 'GET', '/user/balance', await mint(keys))).body.error.code).toBe(
        'privy_user_not_found',
      );
    const t = await mint(keys);
    await signUp(g, t);
    const forged = [
      await mint(keys, { expSeconds: -60 }),
      await mint(keys, { aud: 'someone-elses-app' }),
      unsigned('did:privy:attacker'),
      await mint(await privyKeys()),
    ];
    for (const f of forged) expect((await call(g, 'GET', '/user/balance', f)).status).toBe(401);
    const blocked = await call(g, 'GET', '/user/balance', t);
    expect(blocked.status).toBe(429);
    expect(blocked.body.error.code).toBe('too_many_auth_failures');
    expect(Number(blocked.headers.get('retry-after'))).toBeGreaterThan(0);
  });

  it('without Privy configured a token is just a wrong key; config and CSP say so', async () => {
    const t = await mint(keys);
    const r = await call(plain, 'GET', '/user/balance', t);
    expect(r.status).toBe(401);
    expect(r.body.error.code).toBe('invalid_api_key');
    expect((await call(plain, 'GET', '/auth/config', null)).body).toEqual({ privy: null });
    const csp = (await fetch(`${plain.url}/dashboard/`)).headers.get('content-security-policy')!;
    expect(csp).toMatch(/(^|; )connect-src 'self';/);
    // The default Privy API URL, with no client id.
    expect((await call(g, 'GET', '/auth/config', null)).body).toEqual({
      privy: { app_id: APP_ID, api_url: 'https://auth.privy.io' },
    });
  });

  it('PRIVY_API_URL must be an http(s) URL', () => {
    const base = { PRIVY_APP_ID: APP_ID, GATEWAY_SECRET: 'x'.repeat(32), DATABASE_URL: 'sqlite::memory:' };
    expect(() => loadConfig({ ...base, PRIVY_API_URL: 'ftp://auth.example.test' })).toThrow(/PRIVY_API_URL/);
    expect(() => loadConfig({ ...base, PRIVY_API_URL: 'not a url' })).toThrow(/PRIVY_API_URL/);
    expect(loadConfig({ ...base, PRIVY_API_URL: 'http://127.0.0.1:9999' }).accounts.privyApiUrl).toBe(
      'http://127.0.0.1:9999',
    );
  });
});
