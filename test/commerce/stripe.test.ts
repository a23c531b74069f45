import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, DATABASES } from '../helpers/db.js';
import { type RunningGateway, startGateway } from '../helpers/gateway.js';
import { type MockStripe, startMockStripe } from '../mocks/stripe.js';

describe.each(DATABASES)('stripe payments (%s)', (kind) => {
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
  const deliver = (event: unknown, sign: (p: string) => string = (p) => stripe.sign(p)) => {
    const payload = JSON.stringify(event);
    return fetch(`${g.url}/stripe/webhook`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'stripe-signature': sign(payload) },
      body: payload,
    });
  };
  const ledger = (userId: string) =>
    g.gw.db.db.selectFrom('ledger').selectAll().where('user_id', '=', userId).orderBy('id').execute();
  const balance = async (userId: string) => (await g.gw.billing.balance(userId))!.balance_micros;
  const checkout = async (key: string, body: unknown) => {
    const r = await call(key, '/payments/checkout', body);
    expect(r.status).toBe(200);
    return (await r.json()) as {
      payment_id: string;
      session_id: string;
      checkout_url: string;
      amount: number;
    };
  };

  it('creates a checkout session through the SDK against the local server', async () => {
    const u = await g.createUser(0);
    const co = await checkout(u.apiKey, { amount: 25 });
    expect(co.checkout_url).toContain(stripe.url);
    const created = stripe.calls.find(
      (c) => c.path === '/v1/checkout/sessions' && c.body.client_reference_id === co.payment_id,
    )!;
    expect(created.body.line_items[0].price_data.unit_amount).toBe('2500');
    expect(created.idempotencyKey).toBe(`checkout:${co.payment_id}`);
    const bad = await call(u.apiKey, '/payments/checkout', { amount: 1 });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as any).error.param).toBe('amount');
    const pkg = await checkout(u.apiKey, { package_id: 'builder' });
    expect(pkg.amount).toBe(50);
  });

  it('the same event delivered 5 times in a row and 5 times concurrently credits once', async () => {
    const u = await g.createUser(0);
    const co = await checkout(u.apiKey, { amount: 20 });
    const event = stripe.completedEvent(co.session_id);
    const seq = [];
    for (let i = 0; i < 5; i++) seq.push(await deliver(event));
    expect(seq.map((r) => r.status)).toEqual([200, 200, 200, 200, 200]);
    const bodies = await Promise.all(seq.map((r) => r.json() as Promise<any>));
    expect(bodies.filter((b) => b.duplicate === false)).toHaveLength(1);
    expect(await balance(u.userId)).toBe(20_000_000);

    // A second user, the event delivered 5 times at once; plus a different event for the same payment.
    const v = await g.createUser(0);
    const co2 = await checkout(v.apiKey, { amount: 15 });
    const e2 = stripe.completedEvent(co2.session_id);
    const again = stripe.event(
      'checkout.session.async_payment_succeeded',
      stripe.sessions.get(co2.session_id) as any,
    );
    const conc = await Promise.all([...Array.from({ length: 5 }, () => deliver(e2)), deliver(again)]);
    expect(conc.every((r) => r.status === 200)).toBe(true);
    expect(await balance(v.userId)).toBe(15_000_000);
    const rows = (await ledger(v.userId)).filter((r) => r.kind === 'purchase');
    expect(rows).toHaveLength(1);
    expect(rows[0]!.reference).toBe(`payment:${co2.payment_id}`);
    expect(rows[0]!.idempotency_key).toBe(`payment:${co2.payment_id}`);
    expect(await g.gw.billing.ledgerSum(v.userId)).toBe(15_000_000);
    const events = await g.gw.db.db
      .selectFrom('stripe_events')
      .selectAll()
      .where('id', 'in', [e2.id, again.id])
      .execute();
    expect(events).toHaveLength(2);

    const p = (await (await call(v.apiKey, `/payments/${co2.payment_id}`)).json()) as any;
    expect(p.status).toBe('paid');
    expect(p.credits_granted).toBe(15);
    // Owner only.
    expect((await call(u.apiKey, `/payments/${co2.payment_id}`)).status).toBe(404);
    const list = (await (await call(v.apiKey, '/user/payments')).json()) as any;
    expect(list.payments.map((x: any) => x.id)).toEqual([co2.payment_id]);
  });

  it('tampered metadata grants what was paid, to the user who created the checkout', async () => {
    const victim = await g.createUser(0);
    const attacker = await g.createUser(0);
    const co = await checkout(victim.apiKey, { amount: 30 });
    const attackerCo = await checkout(attacker.apiKey, { amount: 5 });
    const event = stripe.completedEvent(co.session_id, {
      metadata: {
        payment_id: attackerCo.payment_id,
        user_id: attacker.userId,
        credits: '100000',
        amount: '100000',
      },
      client_reference_id: attackerCo.payment_id,
    });
    expect((await deliver(event)).status).toBe(200);
    expect(await balance(victim.userId)).toBe(30_000_000);
    expect(await balance(attacker.userId)).toBe(0);

    // Stripe says less was paid than the checkout asked: credit what was paid.
    const w = await g.createUser(0);
    const co3 = await checkout(w.apiKey, { amount: 40 });
    expect(
      (
        await deliver(
          stripe.completedEvent(co3.session_id, { amount_total: 1000, metadata: { credits: '40' } }),
        )
      ).status,
    ).toBe(200);
    expect(await balance(w.userId)).toBe(10_000_000);

    // A session the gateway never created grants nothing.
    const forged = stripe.event('checkout.session.completed', {
      id: 'cs_test_forged',
      object: 'checkout.session',
      payment_status: 'paid',
      amount_total: 99900,
      client_reference_id: attackerCo.payment_id,
      metadata: { user_id: attacker.userId },
    });
    const r = await deliver(forged);
    expect(((await r.json()) as any).outcome).toBe('unknown_session');
    expect(await balance(attacker.userId)).toBe(0);
  });

  it('a bad signature is refused with 400 and changes nothing', async () => {
    const u = await g.createUser(0);
    const co = await checkout(u.apiKey, { amount: 12 });
    const event = stripe.completedEvent(co.session_id);
    const wrong = await deliver(event, (p) => stripe.sign(p, 'whsec_not_the_secret'));
    expect(wrong.status).toBe(400);
    expect(((await wrong.json()) as any).error.code).toBe('invalid_signature');
    const none = await fetch(`${g.url}/stripe/webhook`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(event),
    });
    expect(none.status).toBe(400);
    // Signed payload, altered body.
    const payload = JSON.stringify(event);
    const altered = await fetch(`${g.url}/stripe/webhook`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'stripe-signature': stripe.sign(payload) },
      body: payload.replace('"amount_total":1200', '"amount_total":9900'),
    });
    expect(altered.status).toBe(400);
    expect(await balance(u.userId)).toBe(0);
    expect(
      await g.gw.db.db.selectFrom('stripe_events').select('id').where('id', '=', event.id).executeTakeFirst(),
    ).toBeUndefined();
    // The genuine delivery still works afterwards.
    expect((await deliver(event)).status).toBe(200);
    expect(await balance(u.userId)).toBe(12_000_000);
  });

  it('a refund takes credits back through the ledger; a shortfall is recorded as debt', async () => {
    const u = await g.createUser(0);
    const co = await checkout(u.apiKey, { amount: 20 });
    const done = stripe.completedEvent(co.session_id);
    await deliver(done);
    const pi = (done.data.object as any).payment_intent as string;
    // Half refunded: $10 back.
    const half = stripe.event('charge.refunded', {
      id: 'ch_1',
      object: 'charge',
      payment_intent: pi,
      amount_refunded: 1000,
    });
    await deliver(half);
    await deliver(half);
    expect(await balance(u.userId)).toBe(10_000_000);
    // Spend $8 (admin debit stands in for usage), then refund the rest: $10 taken, balance −$8, debt $8.
    await g.admin('/admin/add_credits', { user_id: u.userId, credits: -8 });
    await deliver(
      stripe.event('charge.refunded', {
        id: 'ch_1',
        object: 'charge',
        payment_intent: pi,
        amount_refunded: 2000,
      }),
    );
    expect(await balance(u.userId)).toBe(-8_000_000);
    expect(await g.gw.billing.ledgerSum(u.userId)).toBe(-8_000_000);
    const debts = await g.gw.db.db.selectFrom('debts').selectAll().where('user_id', '=', u.userId).execute();
    expect(debts.map((d) => d.amount_micros)).toEqual([8_000_000]);
    const refunds = (await ledger(u.userId)).filter((r) => r.kind === 'refund');
    expect(refunds.map((r) => r.amount_micros)).toEqual([-10_000_000, -10_000_000]);
    expect(refunds.every((r) => r.reference === `payment:${co.payment_id}`)).toBe(true);
  });

  it('plan subscription: checkout assigns the plan and its credits; renewals credit once; deletion reverts', async () => {
    const u = await g.createUser(0);
    const co = await checkout(u.apiKey, { plan_id: 'dev' });
    const created = stripe.calls.find((c) => c.body?.client_reference_id === co.payment_id)!;
    expect(created.body.mode).toBe('subscription');
    expect(created.body.line_items[0].price_data.recurring.interval).toBe('month');
    const done = stripe.completedEvent(co.session_id);
    await deliver(done);
    const sub = (done.data.object as any).subscription as string;
    const plan = (await (await call(u.apiKey, '/user/plan')).json()) as any;
    expect(plan.plan_id).toBe('dev');
    expect(await balance(u.userId)).toBe(20_000_000);
    // The first invoice was credited with the checkout; a renewal invoice credits once.
    await deliver(
      stripe.event('invoice.paid', {
        id: 'in_first',
        subscription: sub,
        billing_reason: 'subscription_create',
        amount_paid: 2000,
      }),
    );
    expect(await balance(u.userId)).toBe(20_000_000);
    const renewal = stripe.event('invoice.paid', {
      id: `in_${sub}_2`,
      parent: { subscription_details: { subscription: sub } },
      billing_reason: 'subscription_cycle',
      amount_paid: 2000,
      currency: 'usd',
    });
    await Promise.all([
      deliver(renewal),
      deliver(renewal),
      deliver({ ...renewal, id: `${renewal.id}_retry` }),
    ]);
    expect(await balance(u.userId)).toBe(40_000_000);
    await deliver(stripe.event('customer.subscription.deleted', { id: sub, object: 'subscription' }));
    const after = (await (await call(u.apiKey, '/user/plan')).json()) as any;
    expect(after.plan_id).toBe('free');
  });

  it('Stripe failing to create a session is a 502 and the payment is marked failed', async () => {
    const u = await g.createUser(0);
    stripe.failNext.push(500, 500, 500);
    const r = await call(u.apiKey, '/payments/checkout', { amount: 10 });
    expect(r.status).toBe(502);
    const rows = await g.gw.db.db
      .selectFrom('payments')
      .selectAll()
      .where('user_id', '=', u.userId)
      .execute();
    expect(rows.map((x) => x.status)).toEqual(['failed']);
    stripe.failNext.length = 0;
  });
});
