import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, DATABASES } from '../helpers/db.js';
import { ADMIN_KEY, type RunningGateway, startGateway } from '../helpers/gateway.js';
import { type MockStripe, startMockStripe } from '../mocks/stripe.js';

describe.each(DATABASES)('coupons and referrals (%s)', (kind) => {
  let stripe: MockStripe;
  let g: RunningGateway;

  beforeAll(async () => {
    stripe = await startMockStripe();
    const db = await createTestDatabase(kind);
    g = await startGateway(db, {
      STRIPE_SECRET_KEY: stripe.secretKey,
      STRIPE_WEBHOOK_SECRET: stripe.webhookSecret,
      STRIPE_BASE_URL: stripe.url,
      JOBS_INTERVAL_MS: '0',
    });
  });
  afterAll(async () => {
    await g?.close();
    await g?.db.drop();
    await stripe?.close();
  });

  const call = (key: string, path: string, body?: unknown, method = body === undefined ? 'GET' : 'POST') =>
    fetch(g.url + path, {
      method,
      headers: {
        authorization: `Bearer ${key}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  const json = async (r: Response) => (await r.json()) as any;
  const ledger = (userId: string) =>
    g.gw.db.db.selectFrom('ledger').selectAll().where('user_id', '=', userId).orderBy('id').execute();
  const balance = async (userId: string) => (await g.gw.billing.balance(userId))!.balance_micros;
  const users = (n: number, credits = 0) =>
    Promise.all(Array.from({ length: n }, () => g.createUser(credits)));
  const buy = async (key: string, amount: number) => {
    const co = await json(await call(key, '/payments/checkout', { amount }));
    const event = stripe.completedEvent(co.session_id);
    return { co, event };
  };
  const deliver = (event: unknown) => {
    const payload = JSON.stringify(event);
    return fetch(`${g.url}/stripe/webhook`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'stripe-signature': stripe.sign(payload) },
      body: payload,
    });
  };

  it('admin CRUD; redemption answers with the balances and writes one referenced ledger row', async () => {
    const created = await g.admin('/admin/coupons', {
      code: 'welcome5',
      kind: 'credit',
      value: 5,
      max_uses: 10,
    });
    expect(created.status).toBe(201);
    const c = await json(created);
    expect(c.code).toBe('WELCOME5');
    expect((await g.admin('/admin/coupons', { code: 'welcome5', kind: 'credit', value: 5 })).status).toBe(
      409,
    );
    expect((await g.admin('/admin/coupons', { code: 'x', kind: 'credit', value: 5 })).status).toBe(400);
    const list = await json(await g.admin('/admin/coupons', undefined, 'GET'));
    expect(list.coupons.some((x: any) => x.id === c.id)).toBe(true);
    const patched = await json(await g.admin(`/admin/coupons/${c.id}`, { max_uses: 20 }, 'PATCH'));
    expect(patched.max_uses).toBe(20);

    const u = await g.createUser(1.5);
    const r = await call(u.apiKey, '/coupons/redeem', { code: 'welcome5' });
    expect(r.status).toBe(200);
    expect(await json(r)).toMatchObject({
      coupon_code: 'WELCOME5',
      coupon_value: 5,
      previous_balance: 1.5,
      new_balance: 6.5,
    });
    const again = await call(u.apiKey, '/coupons/redeem', { code: 'WELCOME5' });
    expect(again.status).toBe(409);
    expect((await json(again)).error.code).toBe('coupon_already_redeemed');
    const rows = (await ledger(u.userId)).filter((x) => x.kind === 'coupon');
    expect(rows).toHaveLength(1);
    expect(rows[0]!.reference).toMatch(/^coupon_redemption:\d+$/);
    const hist = await json(await call(u.apiKey, '/coupons/history'));
    expect(hist.redemptions.map((h: any) => [h.coupon_code, h.value, h.ledger_id])).toEqual([
      ['WELCOME5', 5, rows[0]!.id],
    ]);

    const del = await fetch(`${g.url}/admin/coupons/${c.id}`, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${ADMIN_KEY}` },
    });
    expect(del.status).toBe(200);
    const v = await g.createUser(0);
    expect((await json(await call(v.apiKey, '/coupons/redeem', { code: 'WELCOME5' }))).error.code).toBe(
      'coupon_inactive',
    );

    // Restrictions: one user only, validity window, unknown code.
    const w = await g.createUser(0);
    await g.admin('/admin/coupons', { code: 'ONLYW', kind: 'credit', value: 1, user_id: w.userId });
    expect((await call(v.apiKey, '/coupons/redeem', { code: 'ONLYW' })).status).toBe(404);
    expect((await call(w.apiKey, '/coupons/redeem', { code: 'ONLYW' })).status).toBe(200);
    await g.admin('/admin/coupons', {
      code: 'OLD',
      kind: 'credit',
      value: 1,
      valid_until: new Date(Date.now() - 1000).toISOString(),
    });
    expect((await json(await call(v.apiKey, '/coupons/redeem', { code: 'OLD' }))).error.code).toBe(
      'coupon_expired',
    );
    expect((await call(v.apiKey, '/coupons/redeem', { code: 'NOPE' })).status).toBe(404);
  });

  it('100 concurrent redemptions of a one-use code give exactly one success', async () => {
    await g.admin('/admin/coupons', { code: 'ONEUSE', kind: 'credit', value: 7, max_uses: 1 });
    const us = await users(100);
    const rs = await Promise.all(us.map((u) => call(u.apiKey, '/coupons/redeem', { code: 'ONEUSE' })));
    const statuses = rs.map((r) => r.status);
    expect(statuses.filter((s) => s === 200)).toHaveLength(1);
    expect(statuses.filter((s) => s === 409)).toHaveLength(99);
    const grants = await g.gw.db.db
      .selectFrom('ledger')
      .selectAll()
      .where('kind', '=', 'coupon')
      .where('amount_micros', '=', 7_000_000)
      .execute();
    expect(grants).toHaveLength(1);
    const c = await g.gw.db.db
      .selectFrom('coupons')
      .selectAll()
      .where('code', '=', 'ONEUSE')
      .executeTakeFirstOrThrow();
    expect(c.uses).toBe(1);

    // One user, 100 concurrent tries of a once-per-user code with uses to spare: one success.
    await g.admin('/admin/coupons', { code: 'PERUSER', kind: 'credit', value: 2 });
    const u = await g.createUser(0);
    const same = await Promise.all(
      Array.from({ length: 100 }, () => call(u.apiKey, '/coupons/redeem', { code: 'PERUSER' })),
    );
    expect(same.filter((r) => r.status === 200)).toHaveLength(1);
    expect(await balance(u.userId)).toBe(2_000_000);
    expect(await g.gw.billing.ledgerSum(u.userId)).toBe(2_000_000);
  });

  it('a discount coupon lowers the top-up price, not the credits', async () => {
    await g.admin('/admin/coupons', { code: 'HALF', kind: 'percent', value: 50, max_uses: 5 });
    const u = await g.createUser(0);
    expect((await json(await call(u.apiKey, '/coupons/redeem', { code: 'HALF' }))).error.code).toBe(
      'coupon_is_discount',
    );
    const co = await json(await call(u.apiKey, '/payments/checkout', { amount: 20, coupon_code: 'HALF' }));
    expect(co.amount).toBe(10);
    expect(co.credits).toBe(20);
    await deliver(stripe.completedEvent(co.session_id));
    expect(await balance(u.userId)).toBe(20_000_000);
    const hist = await json(await call(u.apiKey, '/coupons/history'));
    expect(hist.redemptions[0]).toMatchObject({ coupon_code: 'HALF', value: 10, payment_id: co.payment_id });
    // Once per user.
    expect((await call(u.apiKey, '/payments/checkout', { amount: 20, coupon_code: 'HALF' })).status).toBe(
      409,
    );
    // Restricted to new users (no purchase yet) and to plans.
    await g.admin('/admin/coupons', { code: 'NEWBIE', kind: 'credit', value: 1, new_users_only: true });
    expect((await json(await call(u.apiKey, '/coupons/redeem', { code: 'NEWBIE' }))).error.code).toBe(
      'coupon_new_users_only',
    );
    const fresh = await g.createUser(0);
    expect((await call(fresh.apiKey, '/coupons/redeem', { code: 'NEWBIE' })).status).toBe(200);
    await g.admin('/admin/coupons', { code: 'TEAMONLY', kind: 'credit', value: 1, plan_ids: ['team'] });
    expect((await json(await call(fresh.apiKey, '/coupons/redeem', { code: 'TEAMONLY' }))).error.code).toBe(
      'coupon_plan_mismatch',
    );
    await g.admin('/admin/assign-plan', { user_id: fresh.userId, plan_id: 'team' });
    expect((await call(fresh.apiKey, '/coupons/redeem', { code: 'TEAMONLY' })).status).toBe(200);
  });

  it('referrals: code, linking rules, reward once on a first purchase ≥ $10, at most 10 per code', async () => {
    const ref = await g.createUser(0);
    const code = (await json(await call(ref.apiKey, '/referral/code'))).referral_code as string;
    expect(code).toMatch(/^[A-Z0-9]{4,}$/);
    expect((await json(await call(ref.apiKey, '/referral/link', { code }))).error.code).toBe('self_referral');

    const small = await g.createUser(0);
    expect((await call(small.apiKey, '/referral/link', { code: code.toLowerCase() })).status).toBe(200);
    const other = await g.createUser(0);
    const otherCode = (await json(await call(other.apiKey, '/referral/code'))).referral_code;
    expect((await json(await call(small.apiKey, '/referral/link', { code: otherCode }))).error.code).toBe(
      'already_referred',
    );
    // First purchase below $10: no reward, and none later either.
    const s1 = await buy(small.apiKey, 5);
    await deliver(s1.event);
    const s2 = await buy(small.apiKey, 50);
    await deliver(s2.event);
    expect(await balance(ref.userId)).toBe(0);
    expect(await balance(small.userId)).toBe(55_000_000);
    expect((await json(await call(small.apiKey, '/referral/link', { code: otherCode }))).error.code).toBe(
      'referral_too_late',
    );

    // 12 referred users buy at once (each event delivered twice, concurrently): 10 rewards.
    const referred = await users(12);
    for (const r of referred) expect((await call(r.apiKey, '/referral/link', { code })).status).toBe(200);
    const buys = await Promise.all(referred.map((r) => buy(r.apiKey, 10)));
    const res = await Promise.all(buys.flatMap((b) => [deliver(b.event), deliver(b.event)]));
    expect(res.every((r) => r.status === 200)).toBe(true);
    expect(await balance(ref.userId)).toBe(100_000_000);
    const refRows = (await ledger(ref.userId)).filter((x) => x.kind === 'referral_reward');
    expect(refRows).toHaveLength(10);
    const rewardedUsers = new Set(refRows.map((x) => x.reference!.split(':')[1]));
    expect(rewardedUsers.size).toBe(10);
    let bonusTotal = 0;
    for (const r of referred) {
      const rows = (await ledger(r.userId)).filter((x) => x.kind === 'referral_reward');
      expect(rows.length).toBeLessThanOrEqual(1);
      if (rows.length) {
        expect(rewardedUsers.has(r.userId)).toBe(true);
        expect(rows[0]!.reference).toMatch(new RegExp(`^referral:${r.userId}:pay_`));
      }
      bonusTotal += rows.length;
      expect(await g.gw.billing.ledgerSum(r.userId)).toBe(await balance(r.userId));
    }
    expect(bonusTotal).toBe(10);
    const stats = await json(await call(ref.apiKey, '/referral/stats'));
    expect(stats).toMatchObject({
      referral_code: code,
      total_referrals: 13,
      completed_referrals: 10,
      total_earned: 100,
      rewards_remaining: 0,
    });
    // A later purchase of a rewarded user pays nothing more.
    const again = await buy(referred[0]!.apiKey, 20);
    await deliver(again.event);
    expect(await balance(ref.userId)).toBe(100_000_000);
  });
});
