import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, DATABASES } from '../helpers/db.js';
import { type RunningGateway, startGateway } from '../helpers/gateway.js';
import { APP_ID, mint, type PrivyKeys, privyKeys, tamper, unsigned } from './privy-tokens.js';

const post = (g: RunningGateway, path: string, body: unknown) =>
  fetch(g.url + path, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });

async function countUsers(g: RunningGateway): Promise<number> {
  const r = await g.gw.db.db
    .selectFrom('users')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .executeTakeFirstOrThrow();
  return Number(r.n);
}

describe.each(DATABASES)('Privy login (%s)', (kind) => {
  let g: RunningGateway;
  let keys: PrivyKeys;
  let other: PrivyKeys;
  beforeAll(async () => {
    keys = await privyKeys();
    other = await privyKeys();
    g = await startGateway(await createTestDatabase(kind), {
      PRIVY_APP_ID: APP_ID,
      PRIVY_VERIFICATION_KEY: keys.publicPem,
      SIGNUP_CREDITS_USD: '2.5',
    });
  });
  afterAll(async () => {
    await g?.close();
    await g?.db.drop();
  });

  it('a valid token signs up once, then signs in to the same user by Privy DID', async () => {
    const sub = 'did:privy:alice0001';
    const r1 = await post(g, '/auth/privy', { token: await mint(keys, { sub }), email: 'alice@example.com' });
    expect(r1.status).toBe(200);
    const j1 = (await r1.json()) as any;
    expect(j1).toMatchObject({ success: true, is_new_user: true, credits: 2.5, email: 'alice@example.com' });
    expect(j1.api_key).toMatch(/^gw_live_/);
    expect(j1.referral_code).toMatch(/^[A-Z2-9]{8}$/);
    // The key works.
    const bal = await fetch(`${g.url}/user/balance`, { headers: { authorization: `Bearer ${j1.api_key}` } });
    expect(((await bal.json()) as any).credits).toBe(2.5);

    const r2 = await post(g, '/auth', { token: await mint(keys, { sub }) });
    const j2 = (await r2.json()) as any;
    expect(r2.status).toBe(200);
    expect(j2).toMatchObject({ is_new_user: false, user_id: j1.user_id, credits: 2.5 });
    expect(j2.api_key).toBeUndefined();
    // issue_key gives a returning user a new key.
    const r3 = await post(g, '/auth/privy', { token: await mint(keys, { sub }), issue_key: true });
    const j3 = (await r3.json()) as any;
    expect(j3.api_key).toMatch(/^gw_live_/);
    expect(j3.user_id).toBe(j1.user_id);
  });

  it('never finds a user by email or username: another DID with the same email is a new user', async () => {
    const a = (await (
      await post(g, '/auth/privy', { token: await mint(keys), username: 'bob' })
    ).json()) as any;
    const b = (await (
      await post(g, '/auth/privy', { token: await mint(keys), username: 'bob', email: 'alice@example.com' })
    ).json()) as any;
    expect(b.is_new_user).toBe(true);
    expect(b.user_id).not.toBe(a.user_id);
    expect(b.username).toBeNull();
    expect(b.email).toBeNull();
  });

  it('stores a known referral_code as referred_by_code', async () => {
    const ref = (await (await post(g, '/auth/privy', { token: await mint(keys) })).json()) as any;
    const r = (await (
      await post(g, '/auth/privy', { token: await mint(keys), referral_code: ref.referral_code })
    ).json()) as any;
    expect(r.referred_by_code).toBe(ref.referral_code);
    const row = await g.gw.db.db
      .selectFrom('users')
      .selectAll()
      .where('id', '=', r.user_id)
      .executeTakeFirstOrThrow();
    expect(row.referred_by_code).toBe(ref.referral_code);
    const unknown = (await (
      await post(g, '/auth/privy', { token: await mint(keys), referral_code: 'NOSUCHCODE' })
    ).json()) as any;
    expect(unknown.referred_by_code).toBeNull();
  });

  it('refuses every forged or expired token with 401 and creates no user', async () => {
    const good = await mint(keys, { sub: 'did:privy:victim' });
    const forged: Record<string, string> = {
      expired: await mint(keys, { expSeconds: -60 }),
      wrongAudience: await mint(keys, { aud: 'someone-elses-app' }),
      wrongIssuer: await mint(keys, { iss: 'evil.example' }),
      tampered: tamper(good, 'did:privy:attacker'),
      algNone: unsigned('did:privy:attacker2'),
      otherKey: await mint(other),
      garbage: 'not-a-jwt-at-all',
      notPrivySub: await mint(keys, { sub: 'alice' }),
    };
    const before = await countUsers(g);
    for (const [name, token] of Object.entries(forged)) {
      const r = await post(g, '/auth/privy', { token });
      expect(r.status, name).toBe(401);
      const j = (await r.json()) as any;
      expect(j.error.code, name).toBe('invalid_privy_token');
    }
    expect(await countUsers(g)).toBe(before);
  });

  it('a missing token is 400', async () => {
    expect((await post(g, '/auth/privy', {})).status).toBe(400);
  });
});

describe('Privy login brute force', () => {
  let g: RunningGateway;
  let keys: PrivyKeys;
  beforeAll(async () => {
    keys = await privyKeys();
    g = await startGateway(await createTestDatabase('sqlite'), {
      PRIVY_APP_ID: APP_ID,
      PRIVY_VERIFICATION_KEY: keys.publicPem,
      AUTH_FAILURES_PER_MINUTE: '3',
    });
  });
  afterAll(async () => {
    await g?.close();
    await g?.db.drop();
  });

  it('forged tokens are throttled per IP like wrong keys', async () => {
    for (let i = 0; i < 3; i++)
      expect((await post(g, '/auth/privy', { token: unsigned(`did:privy:x${i}`) })).status).toBe(401);
    const r = await post(g, '/auth/privy', { token: await mint(keys) });
    expect(r.status).toBe(429);
    expect(Number(r.headers.get('retry-after'))).toBeGreaterThan(0);
  });
});

describe('Privy login with a JWKS URL', () => {
  let g: RunningGateway;
  let jwks: Server;
  let keys: PrivyKeys;
  beforeAll(async () => {
    keys = await privyKeys();
    jwks = createServer((_req, res) => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ keys: [keys.jwk] }));
    });
    await new Promise<void>((r) => jwks.listen(0, '127.0.0.1', r));
    const port = (jwks.address() as AddressInfo).port;
    g = await startGateway(await createTestDatabase('sqlite'), {
      PRIVY_APP_ID: APP_ID,
      PRIVY_JWKS_URL: `http://127.0.0.1:${port}/jwks.json`,
    });
  });
  afterAll(async () => {
    await g?.close();
    await g?.db.drop();
    await new Promise((r) => jwks?.close(r));
  });

  it('verifies against the JWKS and refuses a token from another key', async () => {
    const ok = await post(g, '/auth/privy', { token: await mint(keys, { kid: 'test-kid' }) });
    expect(ok.status).toBe(200);
    const bad = await post(g, '/auth/privy', { token: await mint(await privyKeys(), { kid: 'test-kid' }) });
    expect(bad.status).toBe(401);
  });
});
