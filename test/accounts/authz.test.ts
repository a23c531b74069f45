import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { permissionMatches } from '../../src/accounts/roles.js';
import { type RouteInfo, routeTable } from '../../src/http/auth.js';
import { createTestDatabase, DATABASES } from '../helpers/db.js';
import { type RunningGateway, startGateway } from '../helpers/gateway.js';
import { call } from './http.js';

/** A concrete path for a route pattern (params filled with a harmless id). */
const pathOf = (url: string) => url.replace(/:[A-Za-z0-9_]+/g, 'authz_probe_id');
const bodyFor = (m: string) => (m === 'GET' || m === 'HEAD' || m === 'OPTIONS' ? undefined : {});

describe.each(DATABASES)('route-table authorization (%s)', (kind) => {
  let g: RunningGateway;
  let routes: RouteInfo[];
  let user: string;
  let developer: string;
  let nobody: string;
  beforeAll(async () => {
    g = await startGateway(await createTestDatabase(kind), { AUTH_FAILURES_PER_MINUTE: '1000000' });
    routes = routeTable(g.gw.app).filter((r) => r.auth !== 'public' && r.method !== 'OPTIONS');
    user = (await g.createUser(1)).apiKey;
    developer = (await g.createUser(1, { role: 'developer' })).apiKey;
    // A custom role with a permission no route uses.
    expect(
      (
        await call(g, 'PUT', '/admin/roles/outsider', `admin-test-key-0123456789abcdef`, {
          permissions: ['nothing:read'],
        })
      ).status,
    ).toBe(200);
    const o = await g.createUser(1);
    expect((await g.admin(`/admin/users/${o.userId}`, { role: 'outsider' }, 'PATCH')).status).toBe(200);
    nobody = o.apiKey;
  });
  afterAll(async () => {
    await g?.close();
    await g?.db.drop();
  });

  it('the table is generated from the registered routes and covers this feature', () => {
    const urls = new Set(routes.map((r) => `${r.method} ${r.url}`));
    for (const u of [
      'POST /v1/chat/completions',
      'GET /user/api-keys',
      'POST /admin/create',
      'GET /admin/monitor',
      'PATCH /admin/users/:id',
      'GET /admin/audit-logs',
    ])
      expect(urls, u).toContain(u);
    // Every admin route carries a permission (a route that declares none needs full admin, `*`).
    for (const r of routes) if (r.auth === 'admin') expect(r.permission, r.url).toBeTruthy();
    expect(routes.length).toBeGreaterThan(20);
  });

  it('every non-public route refuses a request without a key (401) and with an unknown key (401)', async () => {
    for (const r of routes) {
      const res = await call(g, r.method, pathOf(r.url), null, bodyFor(r.method));
      expect(res.status, `${r.method} ${r.url}`).toBe(401);
      const bad = await call(
        g,
        r.method,
        pathOf(r.url),
        'gw_live_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA',
        bodyFor(r.method),
      );
      expect(bad.status, `${r.method} ${r.url}`).toBe(401);
    }
  });

  it('every admin route refuses a key without its permission (403), and admits one with it', async () => {
    const admin = routes.filter((r) => r.auth === 'admin');
    for (const r of admin) {
      const label = `${r.method} ${r.url} (${r.permission})`;
      for (const key of [user, nobody]) {
        const res = await call(g, r.method, pathOf(r.url), key, bodyFor(r.method));
        expect(res.status, label).toBe(403);
      }
      const dev = await call(g, r.method, pathOf(r.url), developer, bodyFor(r.method));
      const devMay = ['monitor:read', 'usage:read', 'models:read'].some((p) =>
        permissionMatches(p, r.permission!),
      );
      if (devMay) expect([401, 403], label).not.toContain(dev.status);
      else expect(dev.status, label).toBe(403);
    }
    // A custom role holding exactly one route's permission gets past authorization on that route.
    const perms = [...new Set(admin.map((r) => r.permission!))].filter((p) => p !== '*');
    for (const perm of perms) {
      const name = `only-${perm.replace(/[^a-z0-9]/g, '-')}`.slice(0, 50);
      expect((await g.admin(`/admin/roles/${name}`, { permissions: [perm] }, 'PUT')).status).toBe(200);
      const u = await g.createUser(0);
      expect((await g.admin(`/admin/users/${u.userId}`, { role: name }, 'PATCH')).status).toBe(200);
      for (const r of admin) {
        if (r.method !== 'GET' && r.method !== 'HEAD') continue; // reads only: no side effects on the test data
        const res = await call(g, r.method, pathOf(r.url), u.apiKey);
        if (permissionMatches(perm, r.permission!))
          expect([401, 403], `${r.url} with ${perm}`).not.toContain(res.status);
        else expect(res.status, `${r.url} with ${perm}`).toBe(403);
      }
    }
  });

  it('every route accepts a valid key past authentication (never 401)', async () => {
    for (const r of routes) {
      if (r.method !== 'GET' && r.method !== 'HEAD') continue;
      const key = r.auth === 'admin' ? 'admin-test-key-0123456789abcdef' : user;
      const res = await call(g, r.method, pathOf(r.url), key);
      expect([401, 403], `${r.method} ${r.url}`).not.toContain(res.status);
    }
  });
});

describe.each(DATABASES)('IDOR: users only ever touch their own data (%s)', (kind) => {
  let g: RunningGateway;
  let a: { userId: string; apiKey: string; keyId: string };
  let b: { userId: string; apiKey: string; keyId: string };
  beforeAll(async () => {
    g = await startGateway(await createTestDatabase(kind));
    a = await g.createUser(3);
    b = await g.createUser(4);
  });
  afterAll(async () => {
    await g?.close();
    await g?.db.drop();
  });

  it("keys, profile, credit transactions, usage and audit logs are the caller's own", async () => {
    // A's primary key cannot be reached by B.
    for (const [m, p, body] of [
      ['GET', `/user/api-keys/${a.keyId}`, undefined],
      ['PUT', `/user/api-keys/${a.keyId}`, { is_active: false }],
      ['POST', `/user/api-keys/${a.keyId}/rotate`, {}],
      ['DELETE', `/user/api-keys/${a.keyId}`, { confirmation: 'DELETE_KEY' }],
    ] as const)
      expect((await call(g, m, p, b.apiKey, body)).status, `${m} ${p}`).toBe(404);
    expect((await call(g, 'GET', '/user/balance', a.apiKey)).status).toBe(200);

    await call(g, 'PUT', '/user/profile', a.apiKey, { display_name: 'Alice' });
    const prof = await call(g, 'GET', '/user/profile', b.apiKey);
    expect(prof.body.user_id).toBe(b.userId);
    expect(prof.body.display_name).toBeNull();

    const tx = await call(g, 'GET', '/user/credit-transactions', b.apiKey);
    expect(tx.status).toBe(200);
    expect(tx.body.transactions.length).toBe(1);
    expect(tx.body.transactions[0].amount_usd).toBe(4);

    await g.gw.audit.flush();
    const logs = await call(g, 'GET', '/user/audit-logs', b.apiKey);
    expect(logs.status).toBe(200);
    for (const row of logs.body.logs) expect(row.user_id).toBe(b.userId);
    const aLogs = await call(g, 'GET', '/user/audit-logs', a.apiKey);
    expect(aLogs.body.logs.some((r: any) => r.action === 'user.profile_update')).toBe(true);
    // Query parameters cannot widen the scope.
    const widened = await call(g, 'GET', `/user/audit-logs?user_id=${a.userId}`, b.apiKey);
    for (const row of widened.body.logs ?? []) expect(row.user_id).toBe(b.userId);
  });

  it('chat sessions of another user are not found', async () => {
    const s = await call(g, 'POST', '/chat/sessions', a.apiKey, { title: 'secret plans' });
    expect(s.status).toBe(200);
    const id = s.body.data.id;
    expect((await call(g, 'GET', `/chat/sessions/${id}`, b.apiKey)).status).toBe(404);
    expect((await call(g, 'DELETE', `/chat/sessions/${id}`, b.apiKey)).status).toBe(404);
    expect((await call(g, 'GET', `/chat/sessions/${id}`, a.apiKey)).status).toBe(200);
    const list = await call(g, 'GET', '/chat/sessions', b.apiKey);
    expect(JSON.stringify(list.body)).not.toContain(id);
  });
});
