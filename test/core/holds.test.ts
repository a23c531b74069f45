import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, DATABASES } from '../helpers/db.js';
import { type RunningGateway, startGateway } from '../helpers/gateway.js';

describe.each(DATABASES)('holds and the ledger (%s)', (kind) => {
  let g: RunningGateway;
  beforeAll(async () => {
    g = await startGateway(await createTestDatabase(kind));
  });
  afterAll(async () => {
    await g?.close();
    await g?.db.drop();
  });

  it('a hold is one conditional statement: concurrent holds never exceed the balance', async () => {
    const u = await g.createUser(0.001); // 1000 µ$
    const now = Date.now();
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        g.gw.billing.hold(`hold_t${i}`, u.userId, null, 300, `req_${i}`, now, 60_000),
      ),
    );
    expect(results.filter(Boolean)).toHaveLength(3);
    const b = (await g.gw.billing.balance(u.userId))!;
    expect(b.held_micros).toBe(900);
    expect(await g.gw.billing.available(u.userId)).toBe(100);
    // What the user has counts holds as still theirs; with trial credits, both buckets.
    expect(await g.gw.billing.funds(u.userId)).toBe(1000);
    await g.gw.billing.post({ userId: u.userId, kind: 'test_adjust', bucket: 'trial', amount: 250 }, now);
    expect(await g.gw.billing.funds(u.userId)).toBe(1250);
    expect(await g.gw.billing.funds('usr_nobody')).toBeNull();
  });

  it('the sweeper releases expired holds (a crashed process) and leaves live ones', async () => {
    const u = await g.createUser(0.01);
    const now = Date.now();
    expect(
      await g.gw.billing.hold('hold_dead', u.userId, null, 1000, 'req_dead', now - 120_000, 60_000),
    ).toBe(true);
    expect(await g.gw.billing.hold('hold_live', u.userId, null, 500, 'req_live', now, 60_000)).toBe(true);
    expect((await g.gw.billing.balance(u.userId))!.held_micros).toBe(1500);
    expect(await g.gw.billing.releaseExpired(now)).toBeGreaterThanOrEqual(1);
    const b = (await g.gw.billing.balance(u.userId))!;
    expect(b.held_micros).toBe(500);
    expect(b.balance_micros).toBe(10_000); // releasing charges nothing
    expect(await g.gw.billing.ledgerSum(u.userId)).toBe(10_000);
  });

  it('idempotency keys are unique constraints: a repeated credit applies once', async () => {
    const u = await g.createUser(0);
    const post = () =>
      g.gw.billing.post(
        { userId: u.userId, kind: 'admin_credit', amount: 5_000, idempotencyKey: `once:${u.userId}` },
        Date.now(),
      );
    const results = await Promise.all([post(), post(), post(), post()]);
    expect(results.filter((r) => r !== null)).toHaveLength(1);
    expect((await g.gw.billing.balance(u.userId))!.balance_micros).toBe(5_000);
    expect(await g.gw.billing.ledgerSum(u.userId)).toBe(5_000);
  });

  it('admin add_credits moves the balance through the ledger', async () => {
    const u = await g.createUser(1);
    const res = await g.admin('/admin/add_credits', { user_id: u.userId, credits: 2.5, reason: 'support' });
    expect(res.status).toBe(200);
    const j = await res.json();
    expect(j.new_balance).toBe(3.5);
    const byKey = await g.admin('/admin/add_credits', { api_key: u.apiKey, credits: 0.000001 });
    expect((await byKey.json()).new_balance).toBe(3.500001);
    expect(await g.gw.billing.ledgerSum(u.userId)).toBe(3_500_001);
    const bad = await g.admin('/admin/add_credits', { user_id: u.userId, credits: 'lots' });
    expect(bad.status).toBe(400);
    const nobody = await g.admin('/admin/add_credits', { user_id: 'usr_nobody', credits: 1 });
    expect(nobody.status).toBe(404);
  });
});
