import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, DATABASES } from '../helpers/db.js';
import { ADMIN_KEY, type RunningGateway, startGateway } from '../helpers/gateway.js';
import { call } from './http.js';

const DAY = 86_400_000;

describe.each(DATABASES)('admin API and profile (%s)', (kind) => {
  let g: RunningGateway;
  beforeAll(async () => {
    g = await startGateway(await createTestDatabase(kind), { KEY_CACHE_TTL_MS: '60000' });
  });
  afterAll(async () => {
    await g?.close();
    await g?.db.drop();
  });

  it('lists and searches users with pagination', async () => {
    for (const n of ['zed1', 'zed2', 'zed3'])
      await g.createUser(0, { email: `${n}@search.example`, username: n });
    const r = await call(g, 'GET', '/admin/users?search=search.example&limit=2', ADMIN_KEY);
    expect(r.status).toBe(200);
    expect(r.body.total).toBe(3);
    expect(r.body.users).toHaveLength(2);
    const page2 = await call(g, 'GET', '/admin/users?search=search.example&limit=2&offset=2', ADMIN_KEY);
    expect(page2.body.users).toHaveLength(1);
    const one = await call(g, 'GET', '/admin/users?search=ZED2', ADMIN_KEY);
    expect(one.body.users.map((u: any) => u.username)).toEqual(['zed2']);
    // LIKE wildcards in the search are literal.
    expect((await call(g, 'GET', '/admin/users?search=%25', ADMIN_KEY)).body.total).toBe(0);
    const detail = await call(g, 'GET', `/admin/users/${one.body.users[0].user_id}`, ADMIN_KEY);
    expect(detail.body.keys).toHaveLength(1);
    expect(JSON.stringify(detail.body)).not.toMatch(/key_hash|gw_live_[A-Za-z0-9_-]{20}/);
    expect((await call(g, 'GET', '/admin/users/usr_nope', ADMIN_KEY)).status).toBe(404);
  });

  it("PATCH changes role, status and credits; the user's key sees it on the next request", async () => {
    const u = await g.createUser(1);
    expect((await call(g, 'GET', '/admin/monitor', u.apiKey)).status).toBe(403);
    const promote = await call(g, 'PATCH', `/admin/users/${u.userId}`, ADMIN_KEY, { role: 'developer' });
    expect(promote.status).toBe(200);
    expect(promote.body.user.role).toBe('developer');
    expect((await call(g, 'GET', '/admin/monitor', u.apiKey)).status).toBe(200);
    expect((await call(g, 'GET', '/admin/users', u.apiKey)).status).toBe(403);
    expect((await call(g, 'PATCH', `/admin/users/${u.userId}`, ADMIN_KEY, { role: 'emperor' })).status).toBe(
      400,
    );

    const suspend = await call(g, 'PATCH', `/admin/users/${u.userId}`, ADMIN_KEY, { status: 'suspended' });
    expect(suspend.status).toBe(200);
    const refused = await call(g, 'GET', '/user/balance', u.apiKey);
    expect(refused.status).toBe(403);
    expect(refused.body.error.code).toBe('account_suspended');
    await call(g, 'PATCH', `/admin/users/${u.userId}`, ADMIN_KEY, { status: 'active' });
    expect((await call(g, 'GET', '/user/balance', u.apiKey)).status).toBe(200);

    const credit = await call(g, 'PATCH', `/admin/users/${u.userId}`, ADMIN_KEY, {
      credits: 2.5,
      idempotency_key: 'c1',
    });
    expect(credit.body.user.credits).toBe(3.5);
    expect(
      (await call(g, 'PATCH', `/admin/users/${u.userId}`, ADMIN_KEY, { credits: 2.5, idempotency_key: 'c1' }))
        .status,
    ).toBe(409);
    expect(await g.gw.billing.ledgerSum(u.userId)).toBe(3_500_000);
    const tx = await call(g, 'GET', '/user/credit-transactions', u.apiKey);
    expect(tx.body.transactions.map((t: any) => t.amount_usd)).toEqual([2.5, 1]);
  });

  it('custom roles: create, assign, and refuse deleting a role in use', async () => {
    const r = await call(g, 'PUT', '/admin/roles/auditor', ADMIN_KEY, {
      permissions: ['audit:read', 'users:*'],
    });
    expect(r.status).toBe(200);
    expect((await call(g, 'PUT', '/admin/roles/bad', ADMIN_KEY, { permissions: ['no colon'] })).status).toBe(
      400,
    );
    expect((await call(g, 'PUT', '/admin/roles/admin', ADMIN_KEY, { permissions: [] })).status).toBe(400);
    const u = await g.createUser(0);
    await call(g, 'PATCH', `/admin/users/${u.userId}`, ADMIN_KEY, { role: 'auditor' });
    expect((await call(g, 'GET', '/admin/audit-logs?limit=1', u.apiKey)).status).toBe(200);
    expect((await call(g, 'GET', '/admin/users', u.apiKey)).status).toBe(200);
    expect((await call(g, 'GET', '/admin/monitor', u.apiKey)).status).toBe(403);
    expect(
      (await call(g, 'POST', '/admin/add_credits', u.apiKey, { user_id: u.userId, credits: 5 })).status,
    ).toBe(403);
    expect((await call(g, 'DELETE', '/admin/roles/auditor', ADMIN_KEY)).status).toBe(409);
    const roles = await call(g, 'GET', '/admin/roles', ADMIN_KEY);
    expect(roles.body.roles.map((x: any) => x.name)).toEqual(
      expect.arrayContaining(['user', 'developer', 'admin', 'auditor']),
    );
  });

  it('monitor and usage are SQL aggregates over usage_records', async () => {
    const a = await g.createUser(0);
    const b = await g.createUser(0);
    const now = Date.now();
    const today = Math.floor(now / DAY) * DAY;
    const rows: Array<Record<string, unknown>> = [];
    let n = 0;
    const add = (
      userId: string,
      keyId: string,
      model: string,
      provider: string,
      at: number,
      cost: number,
      status = 'ok',
    ) =>
      rows.push({
        request_id: `req_mon_${n++}`,
        user_id: userId,
        key_id: keyId,
        endpoint: 'chat.completions',
        model,
        provider,
        prompt_tokens: 10,
        completion_tokens: 5,
        cached_tokens: 0,
        reasoning_tokens: 0,
        cost_micros: cost,
        latency_ms: 100,
        status,
        stream: 0,
        app: null,
        created_at: at,
      });
    for (let i = 0; i < 6; i++) add(a.userId, a.keyId, 'm/alpha', 'openrouter', today + 1000 + i, 1000);
    for (let i = 0; i < 3; i++) add(b.userId, b.keyId, 'm/beta', 'openai', today + 2000 + i, 500);
    add(b.userId, b.keyId, 'm/beta', 'openai', today + 3000, 0, 'error_502');
    // Two days ago: in the month (usually) and in the usage range, not in today.
    add(a.userId, a.keyId, 'm/alpha', 'openrouter', today - 2 * DAY + 5, 7000);
    await g.gw.db.db
      .insertInto('usage_records')
      .values(rows as never)
      .execute();

    const m = await call(g, 'GET', '/admin/monitor', ADMIN_KEY);
    expect(m.status).toBe(200);
    expect(m.body.today).toMatchObject({
      requests: 10,
      tokens: 150,
      spend_usd: 0.0075,
      errors: 1,
      active_users: 2,
      error_rate: 0.1,
    });
    expect(m.body.today.top_models[0]).toMatchObject({ model: 'm/alpha', requests: 6 });
    expect(m.body.today.top_users[0]).toMatchObject({ user_id: a.userId, requests: 6 });
    expect(m.body.month.requests).toBeGreaterThanOrEqual(10);
    expect(m.body.today.users).toBeGreaterThanOrEqual(2);

    const start = new Date(today - 3 * DAY).toISOString().slice(0, 10);
    const byDay = await call(g, 'GET', `/admin/usage?group_by=day&start_date=${start}`, ADMIN_KEY);
    expect(byDay.status).toBe(200);
    expect(byDay.body.data).toEqual([
      expect.objectContaining({
        day: new Date(today - 2 * DAY).toISOString().slice(0, 10),
        requests: 1,
        spend_usd: 0.007,
      }),
      expect.objectContaining({
        day: new Date(today).toISOString().slice(0, 10),
        requests: 10,
        spend_usd: 0.0075,
      }),
    ]);
    const byModel = await call(g, 'GET', `/admin/usage?group_by=model&start_date=${start}`, ADMIN_KEY);
    expect(byModel.body.data).toEqual([
      expect.objectContaining({ model: 'm/alpha', requests: 7, spend_usd: 0.013 }),
      expect.objectContaining({ model: 'm/beta', requests: 4, spend_usd: 0.0015, errors: 1 }),
    ]);
    for (const group of ['user', 'key', 'provider']) {
      const r = await call(g, 'GET', `/admin/usage?group_by=${group}&start_date=${start}`, ADMIN_KEY);
      expect(
        r.body.data.reduce((s: number, x: any) => s + x.requests, 0),
        group,
      ).toBe(11);
    }
    const oneUser = await call(
      g,
      'GET',
      `/admin/usage?group_by=provider&user_id=${b.userId}&start_date=${start}`,
      ADMIN_KEY,
    );
    expect(oneUser.body.data).toEqual([expect.objectContaining({ provider: 'openai', requests: 4 })]);
    // Only today, end date inclusive.
    const d = new Date(today).toISOString().slice(0, 10);
    const todayOnly = await call(
      g,
      'GET',
      `/admin/usage?group_by=user&start_date=${d}&end_date=${d}`,
      ADMIN_KEY,
    );
    expect(todayOnly.body.data.reduce((s: number, x: any) => s + x.requests, 0)).toBe(10);
    expect((await call(g, 'GET', '/admin/usage?group_by=color', ADMIN_KEY)).status).toBe(400);
    expect((await call(g, 'GET', '/admin/usage?start_date=yesterday-ish', ADMIN_KEY)).status).toBe(400);

    // A user's own view: only their rows.
    const own = await call(g, 'GET', `/user/usage?group_by=model&start_date=${start}`, b.apiKey);
    expect(own.body.data).toEqual([expect.objectContaining({ model: 'm/beta', requests: 4 })]);
    expect((await call(g, 'GET', '/user/usage?group_by=user', b.apiKey)).status).toBe(400);

    // The live block: the last five minutes' rate, error rate and latency percentiles.
    rows.length = 0;
    for (let i = 1; i <= 10; i++) add(a.userId, a.keyId, 'm/alpha', 'openrouter', Date.now() - 1000, 100);
    rows.forEach((r, i) => {
      r.latency_ms = (i + 1) * 10;
    });
    (rows[9] as Record<string, unknown>).status = 'error_502';
    await g.gw.db.db
      .insertInto('usage_records')
      .values(rows as never)
      .execute();
    const live = (await call(g, 'GET', '/admin/monitor', ADMIN_KEY)).body.live;
    expect(live.window_s).toBe(300);
    expect(live.requests).toBeGreaterThanOrEqual(10);
    expect(live.requests_per_second).toBeCloseTo(live.requests / 300, 3);
    expect(live.latency_p50_ms).toBeGreaterThanOrEqual(50);
    expect(live.latency_p50_ms).toBeLessThanOrEqual(100);
    expect(live.latency_p99_ms).toBe(100);
    expect(live.error_rate).toBeGreaterThan(0);
  });

  it('profile: read and change; duplicate username 409', async () => {
    const u = await g.createUser(0, { username: 'pat' });
    await g.createUser(0, { username: 'taken' });
    const p = await call(g, 'GET', '/user/profile', u.apiKey);
    expect(p.body).toMatchObject({ user_id: u.userId, username: 'pat', role: 'user' });
    const put = await call(g, 'PUT', '/user/profile', u.apiKey, {
      display_name: 'Pat',
      email: 'Pat@New.example',
    });
    expect(put.status).toBe(200);
    expect(put.body).toMatchObject({ display_name: 'Pat', email: 'pat@new.example' });
    expect((await call(g, 'PUT', '/user/profile', u.apiKey, { username: 'taken' })).status).toBe(409);
    expect((await call(g, 'PUT', '/user/profile', u.apiKey, { role: 'admin' })).status).toBe(400);
  });

  it('DELETE /user/account revokes keys, removes personal data and keeps the ledger', async () => {
    const u = await g.createUser(2, { username: 'leaving', email: 'leaving@example.com' });
    const extra = await call(g, 'POST', '/user/api-keys', u.apiKey, { key_name: 'second' });
    const chat = await call(g, 'POST', '/chat/sessions', u.apiKey, { title: 'private thoughts' });
    await call(g, 'POST', `/chat/sessions/${chat.body.data.id}/messages`, u.apiKey, {
      role: 'user',
      content: 'secret',
    });
    expect((await call(g, 'DELETE', '/user/account', u.apiKey, { confirmation: 'yes' })).status).toBe(400);
    expect((await call(g, 'GET', '/user/balance', u.apiKey)).status).toBe(200);
    const d = await call(g, 'DELETE', '/user/account', u.apiKey, { confirmation: 'DELETE_ACCOUNT' });
    expect(d.status).toBe(200);
    expect(d.body.keys_revoked).toBe(2);
    expect((await call(g, 'GET', '/user/balance', u.apiKey)).status).toBe(401);
    expect((await call(g, 'GET', '/user/balance', extra.body.api_key)).status).toBe(401);
    const row = await g.gw.db.db
      .selectFrom('users')
      .selectAll()
      .where('id', '=', u.userId)
      .executeTakeFirstOrThrow();
    expect(row).toMatchObject({ email: null, username: null, privy_id: null, status: 'deleted' });
    expect(await g.gw.billing.ledgerSum(u.userId)).toBe(2_000_000);
    const keys = await g.gw.db.db
      .selectFrom('api_keys')
      .select('id')
      .where('user_id', '=', u.userId)
      .execute();
    expect(keys).toHaveLength(0);
    // chat history is personal data: gone with the account
    const sessions = await g.gw.db.db
      .selectFrom('chat_sessions')
      .select('id')
      .where('user_id', '=', u.userId)
      .execute();
    expect(sessions).toHaveLength(0);
    const msgs = await g.gw.db.db
      .selectFrom('chat_messages')
      .select('id')
      .where('session_id', '=', chat.body.data.id)
      .execute();
    expect(msgs).toHaveLength(0);
    // The freed username can be taken again.
    await g.createUser(0, { username: 'leaving', email: 'leaving@example.com' });
  });
});
