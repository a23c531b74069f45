import { sql } from 'kysely';
import { Pool } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, DATABASES } from '../helpers/db.js';
import { type RunningGateway, startGateway } from '../helpers/gateway.js';
import { call } from './http.js';

describe.each(DATABASES)('API key management (%s)', (kind) => {
  let g: RunningGateway;
  let a: { userId: string; apiKey: string; keyId: string };
  let b: { userId: string; apiKey: string; keyId: string };
  beforeAll(async () => {
    g = await startGateway(await createTestDatabase(kind), {
      MAX_KEYS_PER_USER: '12',
      KEY_CACHE_TTL_MS: '60000',
    });
    a = await g.createUser(1);
    b = await g.createUser(1);
  });
  afterAll(async () => {
    await g?.close();
    await g?.db.drop();
  });

  it('creates a key (secret shown once), lists it without the secret, enforces unique names', async () => {
    const c = await call(g, 'POST', '/user/api-keys', a.apiKey, {
      key_name: 'ci',
      environment_tag: 'test',
      max_requests: 1000,
      ip_allowlist: ['10.0.0.0/8', '::1'],
    });
    expect(c.status).toBe(201);
    expect(c.body.api_key).toMatch(/^gw_test_[A-Za-z0-9_-]{43}$/);
    expect(c.body.key).toMatchObject({ key_name: 'ci', environment_tag: 'test', max_requests: 1000 });
    const list = await call(g, 'GET', '/user/api-keys', a.apiKey);
    expect(list.status).toBe(200);
    expect(list.body.keys.map((k: any) => k.key_name).sort()).toEqual(['Primary key', 'ci']);
    expect(JSON.stringify(list.body)).not.toContain(c.body.api_key);
    expect(JSON.stringify(list.body)).not.toContain(c.body.api_key.slice(8, 30));
    const dup = await call(g, 'POST', '/user/api-keys', a.apiKey, { key_name: 'ci' });
    expect(dup.status).toBe(409);
    // Another user may use the same name.
    expect((await call(g, 'POST', '/user/api-keys', b.apiKey, { key_name: 'ci' })).status).toBe(201);
    const bad = await call(g, 'POST', '/user/api-keys', a.apiKey, {
      key_name: 'x',
      ip_allowlist: ['10.0.0.0/99'],
    });
    expect(bad.status).toBe(400);
    expect(bad.body.error.param).toBe('ip_allowlist');
    expect(
      (await call(g, 'POST', '/user/api-keys', a.apiKey, { key_name: 'y', environment_tag: 'prod' })).status,
    ).toBe(400);
  });

  it('one keep-alive connection carrying several users’ keys: each request is its own key’s (the HMAC kept per connection never answers for another secret)', async () => {
    const pool = new Pool(g.url, { connections: 1, pipelining: 1 });
    const balance = async (key: string) => {
      const res = await pool.request({
        method: 'GET',
        path: '/user/balance',
        headers: { authorization: `Bearer ${key}` },
      });
      return { status: res.statusCode, body: (await res.body.json()) as any };
    };
    try {
      // Same length as a's key, last character changed: only a constant-time comparison of the whole secret tells them apart.
      const last = a.apiKey.at(-1) === 'A' ? 'B' : 'A';
      const forged = a.apiKey.slice(0, -1) + last;
      const seen: string[] = [];
      for (const [key, expected] of [
        [a.apiKey, a],
        [a.apiKey, a],
        [b.apiKey, b],
        [forged, null],
        [a.apiKey, a],
        [forged, null],
        [b.apiKey, b],
      ] as const) {
        const r = await balance(key);
        if (expected === null) {
          expect(r.status).toBe(401);
          expect(r.body.error.code).toBe('invalid_api_key');
        } else {
          expect(r.status).toBe(200);
          expect(r.body).toMatchObject({ user_id: expected.userId, api_key_id: expected.keyId });
        }
        seen.push(String(r.status));
      }
      expect(seen).toEqual(['200', '200', '200', '401', '200', '401', '200']);
    } finally {
      await pool.close();
    }
  });

  it('limits the number of keys per user', async () => {
    const u = await g.createUser(0);
    for (let i = 0; i < 11; i++)
      expect((await call(g, 'POST', '/user/api-keys', u.apiKey, { key_name: `k${i}` })).status).toBe(201);
    const over = await call(g, 'POST', '/user/api-keys', u.apiKey, { key_name: 'k9' });
    expect(over.status).toBe(409);
    expect(over.body.error.code).toBe('key_limit_reached');
  });

  it("PUT changes that key (not the caller's), including is_active; a deactivated key is refused on the next request", async () => {
    const c = await call(g, 'POST', '/user/api-keys', a.apiKey, { key_name: 'to-update' });
    const id = c.body.key.id;
    const newKey = c.body.api_key;
    expect((await call(g, 'GET', '/user/balance', newKey)).status).toBe(200);
    const u = await call(g, 'PUT', `/user/api-keys/${id}`, a.apiKey, {
      key_name: 'renamed',
      is_active: false,
    });
    expect(u.status).toBe(200);
    expect(u.body.key).toMatchObject({ id, key_name: 'renamed', is_active: false });
    // The caller's key is untouched, the target key is refused at once (cache TTL is 60 s here).
    expect((await call(g, 'GET', '/user/balance', a.apiKey)).status).toBe(200);
    const refused = await call(g, 'GET', '/user/balance', newKey);
    expect(refused.status).toBe(401);
    expect(refused.body.error.code).toBe('inactive_api_key');
    expect((await call(g, 'PUT', `/user/api-keys/${id}`, a.apiKey, { is_active: true })).status).toBe(200);
    expect((await call(g, 'GET', '/user/balance', newKey)).status).toBe(200);
  });

  it('rotation: the old secret is refused, the new one works', async () => {
    const c = await call(g, 'POST', '/user/api-keys', a.apiKey, { key_name: 'rot' });
    const old = c.body.api_key;
    expect((await call(g, 'GET', '/user/balance', old)).status).toBe(200);
    const r = await call(g, 'POST', `/user/api-keys/${c.body.key.id}/rotate`, a.apiKey, {});
    expect(r.status).toBe(200);
    expect(r.body.api_key).toMatch(/^gw_live_/);
    expect(r.body.api_key).not.toBe(old);
    expect(r.body.key.id).toBe(c.body.key.id);
    expect((await call(g, 'GET', '/user/balance', old)).status).toBe(401);
    expect((await call(g, 'GET', '/user/balance', r.body.api_key)).status).toBe(200);
  });

  it('rotation with a grace period keeps the old secret until it ends', async () => {
    const c = await call(g, 'POST', '/user/api-keys', a.apiKey, { key_name: 'rot-grace' });
    const old = c.body.api_key;
    const r = await call(g, 'POST', `/user/api-keys/${c.body.key.id}/rotate`, a.apiKey, {
      grace_period_seconds: 1,
    });
    expect(r.body.key.rotation_grace_until).toBeTruthy();
    expect((await call(g, 'GET', '/user/balance', old)).status).toBe(200);
    expect((await call(g, 'GET', '/user/balance', r.body.api_key)).status).toBe(200);
    await new Promise((res) => setTimeout(res, 1100));
    expect((await call(g, 'GET', '/user/balance', old)).status).toBe(401);
    expect((await call(g, 'GET', '/user/balance', r.body.api_key)).status).toBe(200);
  });

  it('a revoked key is refused on the very next request; DELETE needs the confirmation', async () => {
    const c = await call(g, 'POST', '/user/api-keys', a.apiKey, { key_name: 'doomed' });
    const k = c.body.api_key;
    expect((await call(g, 'GET', '/user/balance', k)).status).toBe(200);
    const noConfirm = await call(g, 'DELETE', `/user/api-keys/${c.body.key.id}`, a.apiKey, {
      confirmation: 'yes',
    });
    expect(noConfirm.status).toBe(400);
    expect((await call(g, 'GET', '/user/balance', k)).status).toBe(200);
    const d = await call(g, 'DELETE', `/user/api-keys/${c.body.key.id}`, a.apiKey, {
      confirmation: 'DELETE_KEY',
    });
    expect(d.status).toBe(200);
    expect((await call(g, 'GET', '/user/balance', k)).status).toBe(401);
  });

  it("IDOR: no user can read, change, rotate or revoke another user's key", async () => {
    const c = await call(g, 'POST', '/user/api-keys', a.apiKey, { key_name: 'mine' });
    const id = c.body.key.id;
    expect((await call(g, 'GET', `/user/api-keys/${id}`, b.apiKey)).status).toBe(404);
    expect((await call(g, 'PUT', `/user/api-keys/${id}`, b.apiKey, { is_active: false })).status).toBe(404);
    expect((await call(g, 'POST', `/user/api-keys/${id}/rotate`, b.apiKey, {})).status).toBe(404);
    expect(
      (await call(g, 'DELETE', `/user/api-keys/${id}`, b.apiKey, { confirmation: 'DELETE_KEY' })).status,
    ).toBe(404);
    const list = await call(g, 'GET', '/user/api-keys', b.apiKey);
    expect(list.body.keys.map((k: any) => k.id)).not.toContain(id);
    // Still intact and working for its owner.
    expect((await call(g, 'GET', '/user/balance', c.body.api_key)).status).toBe(200);
    expect((await call(g, 'GET', `/user/api-keys/${id}`, a.apiKey)).body.is_active).toBe(true);
  });

  it('the database never holds a key in plaintext', async () => {
    const secrets = [a.apiKey, b.apiKey];
    for (let i = 0; i < 2; i++) {
      const c = await call(g, 'POST', '/user/api-keys', a.apiKey, {
        key_name: `scan${i}`,
        environment_tag: 'staging',
      });
      secrets.push(c.body.api_key);
      const r = await call(g, 'POST', `/user/api-keys/${c.body.key.id}/rotate`, a.apiKey, {
        grace_period_seconds: 60,
      });
      secrets.push(r.body.api_key);
    }
    await g.gw.audit.flush();
    await g.gw.accounts.flushLastUsed();
    // Every table of the database (key tables and all others): no secret, nor its random part.
    const db = g.gw.db;
    const tables =
      db.dialect === 'sqlite'
        ? (
            await sql<{ name: string }>`select name from sqlite_master where type = 'table'`.execute(db.db)
          ).rows.map((r) => r.name)
        : (
            await sql<{
              name: string;
            }>`select table_name as name from information_schema.tables where table_schema = current_schema()`.execute(
              db.db,
            )
          ).rows.map((r) => r.name);
    expect(tables).toContain('api_keys');
    expect(tables).toContain('audit_logs');
    for (const table of tables) {
      const rows = (await sql`select * from ${sql.table(table)}`.execute(db.db)).rows;
      const dump = JSON.stringify(rows);
      for (const s of secrets) {
        expect(dump, table).not.toContain(s);
        // The random part after the 6 characters of the display prefix (which is stored by design).
        const at = s.indexOf('_', 3) + 1;
        expect(dump, table).not.toContain(s.slice(at + 6, at + 30));
      }
    }
  });
});
