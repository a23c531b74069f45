import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Jobs } from '../../src/fleet/jobs.js';
import { DatabaseLeases } from '../../src/fleet/lock.js';
import { createTestDatabase, DATABASES } from '../helpers/db.js';
import { type RunningGateway, startGateway } from '../helpers/gateway.js';
import { startTestSmtp, type TestSmtp } from '../helpers/smtp.js';
import { type MockProvider, startMockProvider } from '../mocks/provider.js';
import { type MockStripe, startMockStripe } from '../mocks/stripe.js';

const DAY = 86_400_000;

describe.each(DATABASES)('e-mail notifications and scheduled work (%s)', (kind) => {
  let smtp: TestSmtp;
  let stripe: MockStripe;
  let or: MockProvider;
  let g: RunningGateway;

  beforeAll(async () => {
    smtp = await startTestSmtp();
    stripe = await startMockStripe();
    or = await startMockProvider('openrouter');
    const db = await createTestDatabase(kind);
    g = await startGateway(db, {
      OPENROUTER_API_KEY: 'k',
      OPENROUTER_BASE_URL: or.url,
      STRIPE_SECRET_KEY: stripe.secretKey,
      STRIPE_WEBHOOK_SECRET: stripe.webhookSecret,
      STRIPE_BASE_URL: stripe.url,
      SMTP_URL: smtp.url,
      EMAIL_FROM: 'Gatewayz Test <billing@gatewayz.test>',
      EMAIL_RETRY_BASE_MS: '60000',
      JOBS_INTERVAL_MS: '0',
    });
  });
  afterAll(async () => {
    await g?.close();
    await g?.db.drop();
    await smtp?.close();
    await stripe?.close();
    await or?.close();
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
  const emailOf = async (userId: string) =>
    (await g.gw.db.db.selectFrom('users').select('email').where('id', '=', userId).executeTakeFirstOrThrow())
      .email!;
  const drain = () => g.gw.commerce.outbox.runOnce(Date.now());
  const mailsTo = (addr: string) => smtp.mails.filter((m) => m.to.includes(addr));

  it('every template reaches the SMTP server with the right recipient and content', async () => {
    const u = await g.createUser(5.5);
    const addr = await emailOf(u.userId);
    const c = g.gw.commerce;

    // The welcome mail was queued when the account was created (POST /admin/create).
    const welcome = await g.gw.db.db
      .selectFrom('email_outbox')
      .selectAll()
      .where('user_id', '=', u.userId)
      .where('template', '=', 'welcome')
      .execute();
    expect(welcome).toHaveLength(1);
    const created = await call(u.apiKey, '/user/api-keys', { key_name: 'ci-key' });
    expect(created.status).toBe(201);
    const keyPrefix = ((await json(created)).key.key_prefix as string).slice(0, 12);
    const trial = await json(await call(u.apiKey, '/trials/start', {}));
    const endsAt = Date.parse(trial.end_date);
    expect(await c.trials.remindDue(endsAt - DAY - 1)).toBe(0);
    expect(await c.trials.remindDue(endsAt - DAY + 1)).toBe(1);
    expect(await c.trials.remindDue(endsAt - DAY + 2)).toBe(0);
    await c.trials.expireDue(endsAt);
    const co = await json(await call(u.apiKey, '/payments/checkout', { amount: 12 }));
    const payload = JSON.stringify(stripe.completedEvent(co.session_id));
    await fetch(`${g.url}/stripe/webhook`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'stripe-signature': stripe.sign(payload) },
      body: payload,
    });
    expect((await g.admin('/admin/assign-plan', { user_id: u.userId, plan_id: 'team' })).status).toBe(200);
    // Low balance: threshold above the balance after one request.
    const prefs = await json(
      await call(u.apiKey, '/user/notifications/preferences', { low_balance_threshold: 17.5 }, 'PUT'),
    );
    expect(prefs.low_balance_threshold).toBe(17.5);
    await new OpenAI({ apiKey: u.apiKey, baseURL: g.v1, maxRetries: 0 }).chat.completions.create({
      model: 'openai/gpt-4o-mini',
      messages: [{ role: 'user', content: 'hi' }],
    });

    // The low-balance check runs when the request's guards are released, just after the response.
    for (let i = 0; i < 100; i++) {
      const q = await g.gw.db.db
        .selectFrom('email_outbox')
        .select('id')
        .where('user_id', '=', u.userId)
        .where('template', '=', 'low_balance')
        .executeTakeFirst();
      if (q) break;
      await new Promise((res) => setTimeout(res, 20));
    }
    const r = await drain();
    expect(r.failed).toBe(0);
    await smtp.waitFor(8);
    const got = mailsTo(addr);
    const bySubject = (re: RegExp) => got.filter((m) => re.test(m.subject));
    const expectOne = (re: RegExp, ...content: string[]) => {
      const ms = bySubject(re);
      expect(ms, `mail ${re}`).toHaveLength(1);
      expect(ms[0]!.from).toBe('billing@gatewayz.test');
      for (const text of content) expect(ms[0]!.decoded).toContain(text);
      expect(ms[0]!.raw).toMatch(/Content-Type: text\/html/i);
      expect(ms[0]!.raw).toMatch(/Content-Type: text\/plain/i);
    };
    expectOne(/^Welcome to Gatewayz$/, 'referral code is');
    expectOne(/new API key/, 'ci-key', keyPrefix);
    expectOne(/trial has started/, '$10.00 of trial credits', '100000 tokens', '1000 requests');
    expectOne(/trial ends tomorrow/, new Date(endsAt).toISOString().slice(0, 10));
    expectOne(/trial has ended/, '$10.00 of unused trial credits were removed');
    expectOne(
      /Receipt for your payment of \$12\.00/,
      co.payment_id,
      '$12.00 of credits added',
      'New balance: $17.50',
    );
    expectOne(/plan is now Team/, 'from Free to Team');
    expectOne(/Low balance/, 'threshold of $17.50');
    expect(got).toHaveLength(8);
    // Replaying the causes queues nothing new.
    await c.userCreated(u.userId);
    await c.trials.expireDue(endsAt + 1);
    expect((await drain()).sent).toBe(0);
  });

  it('a failed send is retried with back-off, never lost and never sent twice', async () => {
    const u = await g.createUser(0);
    const addr = await emailOf(u.userId);
    await drain(); // the welcome mail
    const now = Date.now();
    smtp.failNext(2);
    await g.gw.commerce.keyCreated(
      u.userId,
      { id: 'key_retry', name: 'retry-key', prefix: 'gw_live_r' },
      now,
    );
    expect(await g.gw.commerce.outbox.runOnce(now)).toEqual({ sent: 0, failed: 1 });
    const row = await g.gw.db.db
      .selectFrom('email_outbox')
      .selectAll()
      .where('dedupe_key', '=', 'api_key_created:key_retry')
      .executeTakeFirstOrThrow();
    expect(row.status).toBe('pending');
    expect(row.attempts).toBe(1);
    expect(row.next_attempt_at).toBe(now + 60_000);
    expect(row.last_error).toMatch(/451|temporarily/i);
    // Not due yet.
    expect(await g.gw.commerce.outbox.runOnce(now + 59_999)).toEqual({ sent: 0, failed: 0 });
    expect(await g.gw.commerce.outbox.runOnce(now + 60_000)).toEqual({ sent: 0, failed: 1 });
    // Second failure doubles the delay.
    const row2 = await g.gw.db.db
      .selectFrom('email_outbox')
      .selectAll()
      .where('id', '=', row.id)
      .executeTakeFirstOrThrow();
    expect(row2.next_attempt_at).toBe(now + 60_000 + 120_000);
    // Two workers at once: one sends.
    const [a, b] = await Promise.all([
      g.gw.commerce.outbox.runOnce(now + 180_000),
      g.gw.commerce.outbox.runOnce(now + 180_000),
    ]);
    expect(a.sent + b.sent).toBe(1);
    await smtp.waitFor(1);
    const keyMails = mailsTo(addr).filter((m) => /new API key/.test(m.subject));
    expect(keyMails).toHaveLength(1);
    expect(keyMails[0]!.decoded).toContain('retry-key');
    const sent = await g.gw.db.db
      .selectFrom('email_outbox')
      .selectAll()
      .where('id', '=', row.id)
      .executeTakeFirstOrThrow();
    expect(sent.status).toBe('sent');
    expect(sent.attempts).toBe(3);
  });

  it('preferences switch mails off; GET shows them', async () => {
    const u = await g.createUser(0);
    const addr = await emailOf(u.userId);
    const p = await json(
      await call(u.apiKey, '/user/notifications/preferences', { payment_receipts: false }, 'PUT'),
    );
    expect(p).toMatchObject({ email_enabled: true, payment_receipts: false, trial_reminders: true });
    expect(await json(await call(u.apiKey, '/user/notifications/preferences'))).toEqual(p);
    const co = await json(await call(u.apiKey, '/payments/checkout', { amount: 10 }));
    const payload = JSON.stringify(stripe.completedEvent(co.session_id));
    await fetch(`${g.url}/stripe/webhook`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'stripe-signature': stripe.sign(payload) },
      body: payload,
    });
    await drain();
    expect(mailsTo(addr).map((m) => m.subject)).toEqual(['Welcome to Gatewayz']);
    const bad = await call(u.apiKey, '/user/notifications/preferences', { nonsense: 1 }, 'PUT');
    expect(bad.status).toBe(400);
  });

  it('scheduled work runs on one instance at a time (the fleet’s lease rows)', async () => {
    let runs = 0;
    const name = `test-job-${kind}`;
    // Two instances' job runners on the gateway's database; the lease clock is moved by hand.
    let clock = Date.now();
    const errors: unknown[] = [];
    const instance = (owner: string) => {
      const jobs = new Jobs(new DatabaseLeases(g.gw.db.db, owner, () => clock), (_job, err) =>
        errors.push(err),
      );
      jobs.every(name, 10_000, async () => {
        runs++;
      });
      return jobs;
    };
    const a = instance(`a-${kind}`);
    const b = instance(`b-${kind}`);
    try {
      const now = clock;
      const [ra, rb] = await Promise.all([a.tick(now), b.tick(now)]);
      expect(ra.length + rb.length).toBe(1);
      expect(runs).toBe(1);
      // Still leased: nobody else runs it; the holder may run again.
      const holder = ra.length ? a : b;
      const other = ra.length ? b : a;
      clock = now + 5_000;
      expect(await other.tick(clock)).toEqual([]);
      expect(await holder.tick(clock)).toEqual([name]);
      // After the lease ends (two intervals and a second after the last renewal) the other instance takes over.
      clock = now + 30_000;
      expect(await other.tick(clock)).toEqual([name]);
      expect(runs).toBe(3);
      expect(errors).toEqual([]);
    } finally {
      await a.stop();
      await b.stop();
    }
  });

  it('plans: list, one, the caller’s plan, entitlements, audited assignment, plan limits reach the limits service', async () => {
    const plans = await json(await fetch(`${g.url}/plans`));
    expect(plans.plans.map((p: any) => p.id)).toEqual(['free', 'dev', 'team', 'enterprise']);
    const dev = await json(await fetch(`${g.url}/plans/dev`));
    expect(dev).toMatchObject({ price_per_month: 20, monthly_credits: 20, max_concurrent_requests: 20 });
    expect((await fetch(`${g.url}/plans/nope`)).status).toBe(404);
    const u = await g.createUser(0);
    expect((await json(await call(u.apiKey, '/user/plan'))).plan_id).toBe('free');
    const assign = await g.admin('/admin/assign-plan', {
      user_id: u.userId,
      plan_id: 'dev',
      reason: 'pilot',
    });
    expect(await json(assign)).toMatchObject({ success: true, plan_id: 'dev', previous_plan_id: 'free' });
    expect((await g.admin('/admin/assign-plan', { user_id: u.userId, plan_id: 'gold' })).status).toBe(400);
    const ent = await json(await call(u.apiKey, '/user/plan/entitlements'));
    expect(ent).toMatchObject({
      plan_id: 'dev',
      daily_request_limit: 10_000,
      max_concurrent_requests: 20,
      allowed_models: ['*'],
    });
    expect(await g.gw.commerce.planLimits(u.userId)).toMatchObject({
      requestsPerDay: 10_000,
      maxConcurrent: 20,
    });
    // Included monthly credits of an admin-assigned plan: once per period, by the scheduled job
    // (JOBS_INTERVAL_MS=0 here: the fleet's job runner runs it when told to).
    const now = Date.now();
    expect(await g.gw.fleet.jobs.tick(now + 1000)).toContain('commerce-plan-credits');
    expect(await g.gw.fleet.jobs.tick(now + 3000)).toContain('commerce-plan-credits');
    const credits = await g.gw.db.db
      .selectFrom('ledger')
      .selectAll()
      .where('user_id', '=', u.userId)
      .where('kind', '=', 'plan_credit')
      .execute();
    expect(credits.map((c) => c.amount_micros)).toEqual([20_000_000]);
    await g.gw.audit.flush();
    const audit = await g.gw.db.db
      .selectFrom('audit_logs')
      .selectAll()
      .where('action', '=', 'plan.assign')
      .where('resource_id', '=', u.userId)
      .execute();
    expect(audit).toHaveLength(1);
    expect(audit[0]!.actor).toBe('admin_key');
  });
});
