import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuditLog } from '../../src/audit/log.js';
import { AuditStore } from '../../src/audit/store.js';
import { parseDatabaseUrl } from '../../src/config/config.js';
import { type Db, openDatabase } from '../../src/db/database.js';
import { migrateToLatest } from '../../src/db/migrations.js';
import { call } from '../accounts/http.js';
import { APP_ID, mint, privyKeys } from '../accounts/privy-tokens.js';
import { createTestDatabase, DATABASES, type TestDatabase } from '../helpers/db.js';
import { ADMIN_KEY, type RunningGateway, startGateway } from '../helpers/gateway.js';

const silent = { error() {}, warn() {}, info() {}, debug() {} } as any;

async function openDb(t: TestDatabase): Promise<Db> {
  const db = openDatabase(parseDatabaseUrl(t.url, t.dataDir, 4));
  await migrateToLatest(db.db, db.dialect);
  return db;
}

const countRows = async (db: Db) =>
  Number(
    (
      await db.db
        .selectFrom('audit_logs')
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .executeTakeFirstOrThrow()
    ).n,
  );

describe.each(DATABASES)('audit queue (%s)', (kind) => {
  let t: TestDatabase;
  let db: Db;
  beforeAll(async () => {
    t = await createTestDatabase(kind);
    db = await openDb(t);
  });
  afterAll(async () => {
    await db?.close();
    await t?.drop();
  });

  it('is bounded: a full queue makes writers wait for a flush, and nothing is dropped', async () => {
    const log = new AuditLog(new AuditStore(db.db), silent, {
      capacity: 5,
      batchSize: 3,
      flushIntervalMs: 10_000,
    });
    const before = await countRows(db);
    let maxPending = 0;
    await Promise.all(
      Array.from({ length: 40 }, async (_, i) => {
        await log.record({ actor: 'system', action: 'test.bounded', details: { i } });
        maxPending = Math.max(maxPending, log.pending());
      }),
    );
    expect(maxPending).toBeLessThanOrEqual(5);
    await log.close();
    expect(await countRows(db)).toBe(before + 40);
  });

  it('writes in batches on its own and flushes the rest on close', async () => {
    const log = new AuditLog(new AuditStore(db.db), silent, { batchSize: 100, flushIntervalMs: 20 });
    const before = await countRows(db);
    for (let i = 0; i < 3; i++) await log.record({ actor: 'system', action: 'test.timer' });
    await new Promise((r) => setTimeout(r, 150));
    expect(await countRows(db)).toBe(before + 3);
    const slow = new AuditLog(new AuditStore(db.db), silent, { batchSize: 100, flushIntervalMs: 60_000 });
    for (let i = 0; i < 7; i++) await slow.record({ actor: 'system', action: 'test.close' });
    expect(await countRows(db)).toBe(before + 3);
    await slow.close();
    expect(await countRows(db)).toBe(before + 10);
    await log.close();
  });
});

describe.each(DATABASES)('audit rows for every audited action (%s)', (kind) => {
  let g: RunningGateway;
  let closed = false;
  let t: TestDatabase;
  beforeAll(async () => {
    const keys = await privyKeys();
    t = await createTestDatabase(kind);
    g = await startGateway(t, {
      PRIVY_APP_ID: APP_ID,
      PRIVY_VERIFICATION_KEY: keys.publicPem,
      AUTH_FAILURES_PER_MINUTE: '5',
    });
    (g as any).privy = keys;
  });
  afterAll(async () => {
    // The test closes the gateway itself; this only matters when it failed before that.
    if (!closed) await g?.close().catch(() => {});
    await t?.drop();
  });

  it('sign-in, failed auth, keys, roles, admin credits and admin actions are all audited; close loses nothing', async () => {
    const keys = (g as any).privy;
    const sub = 'did:privy:audited';
    const login = async () =>
      (await fetch(`${g.url}/auth/privy`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'user-agent': 'audit-test/1.0' },
        body: JSON.stringify({ token: await mint(keys, { sub }) }),
      }).then((r) => r.json())) as any;
    const first = await login();
    await login();
    const userId = first.user_id;
    const key = first.api_key;

    // Failed authentications: a bad key and a forged Privy token.
    expect(
      (await call(g, 'GET', '/user/balance', 'gw_live_wrongwrongwrongwrongwrongwrongwrongwrong12')).status,
    ).toBe(401);
    await fetch(`${g.url}/auth/privy`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ token: await mint(keys, { aud: 'other' }) }),
    });

    const c = await call(g, 'POST', '/user/api-keys', key, { key_name: 'audited' });
    const id = c.body.key.id;
    await call(g, 'PUT', `/user/api-keys/${id}`, key, { max_requests: 10 });
    await call(g, 'POST', `/user/api-keys/${id}/rotate`, key, {});
    await call(g, 'DELETE', `/user/api-keys/${id}`, key, { confirmation: 'DELETE_KEY' });

    await call(g, 'PUT', '/admin/roles/support', ADMIN_KEY, { permissions: ['users:read', 'audit:read'] });
    await call(g, 'PATCH', `/admin/users/${userId}`, ADMIN_KEY, {
      role: 'support',
      credits: 1.25,
      reason: 'goodwill',
    });
    await call(g, 'POST', '/admin/add_credits', ADMIN_KEY, { user_id: userId, credits: 2 });
    await call(g, 'POST', '/admin/create', ADMIN_KEY, { email: 'made-by-admin@example.com', credits: 1 });
    await call(g, 'PATCH', `/admin/users/${userId}`, ADMIN_KEY, { status: 'suspended' });

    // Close the gateway right away: the queue must be flushed by close, not by luck.
    await g.close();
    closed = true;
    const db = await openDb(t);
    try {
      const rows = await db.db.selectFrom('audit_logs').selectAll().orderBy('id').execute();
      const actions = rows.map((r) => r.action);
      for (const a of [
        'auth.signup',
        'auth.login',
        'auth.failed',
        'api_key.create',
        'api_key.update',
        'api_key.rotate',
        'api_key.revoke',
        'role.create',
        'user.role_change',
        'credits.admin_adjust',
        'user.create',
        'user.suspend',
        'admin.request',
      ])
        expect(actions, a).toContain(a);
      const signin = rows.find((r) => r.action === 'auth.login')!;
      expect(signin.user_id).toBe(userId);
      expect(signin.ip).toBe('127.0.0.1');
      expect(signin.user_agent).toBe('audit-test/1.0');
      const failed = rows.filter((r) => r.action === 'auth.failed');
      expect(failed.every((r) => r.ip === '127.0.0.1')).toBe(true);
      // A wrong key and a forged Privy token: two failures, aggregated per IP (first row at once, a summary at close).
      expect(failed.reduce((n, r) => n + JSON.parse(r.details!).count, 0)).toBe(2);
      const credits = rows.filter((r) => r.action === 'credits.admin_adjust');
      expect(credits.map((r) => JSON.parse(r.details!).amount_usd).sort()).toEqual([1.25, 2]);
      expect(credits.every((r) => r.actor === 'admin_key')).toBe(true);
      const roleChange = rows.find((r) => r.action === 'user.role_change')!;
      expect(JSON.parse(roleChange.details!)).toMatchObject({ from: 'user', to: 'support' });
      const adminCalls = rows.filter((r) => r.action === 'admin.request').map((r) => r.resource_id);
      expect(adminCalls).toContain('PATCH /admin/users/:id');
      expect(adminCalls).toContain('POST /admin/add_credits');
      // Details never carry a secret.
      expect(JSON.stringify(rows)).not.toContain(key);
    } finally {
      await db.close();
    }
  });
});

describe.each(DATABASES)('brute-force protection (%s)', (kind) => {
  let g: RunningGateway;
  let closed = false;
  let t: TestDatabase;
  beforeAll(async () => {
    t = await createTestDatabase(kind);
    g = await startGateway(t, { AUTH_FAILURES_PER_MINUTE: '5' });
  });
  afterAll(async () => {
    // The test closes the gateway itself; this only matters when it failed before that.
    if (!closed) await g?.close().catch(() => {});
    await t?.drop();
  });

  it('throttles failed authentications per IP, never says which part was wrong, and aggregates the audit rows', async () => {
    const u = await g.createUser(1);
    const real = u.apiKey;
    const guesses = [
      `${real.slice(0, -1)}${real.endsWith('A') ? 'B' : 'A'}`, // right prefix, one char off
      `gw_live_${'x'.repeat(43)}`,
      'gw_test_short',
      'sk-not-ours',
      real.replace('gw_live_', 'gw_test_'),
    ];
    const bodies = new Set<string>();
    for (const k of guesses) {
      const r = await call(g, 'GET', '/user/balance', k);
      expect(r.status).toBe(401);
      bodies.add(JSON.stringify(r.body));
    }
    expect(bodies.size).toBe(1);
    // The IP is now blocked for the rest of the minute, even with the right key.
    for (let i = 0; i < 10; i++) {
      const r = await call(g, 'GET', '/user/balance', guesses[0]!);
      expect(r.status).toBe(429);
      expect(Number(r.headers.get('retry-after'))).toBeGreaterThan(0);
    }
    expect((await call(g, 'GET', '/user/balance', real)).status).toBe(429);
    // Public routes are unaffected.
    expect((await call(g, 'GET', '/health', null)).status).toBe(200);

    await g.close();
    closed = true;
    const db = await openDb(t);
    try {
      const rows = await db.db
        .selectFrom('audit_logs')
        .selectAll()
        .where('action', '=', 'auth.failed')
        .execute();
      // One row at the first failure, one summary row for the rest: never one row per attempt.
      expect(rows.length).toBe(2);
      const total = rows.reduce((n, r) => n + JSON.parse(r.details!).count, 0);
      expect(total).toBe(5);
    } finally {
      await db.close();
    }
  });
});
