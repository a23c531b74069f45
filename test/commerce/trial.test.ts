import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, DATABASES } from '../helpers/db.js';
import { type RunningGateway, startGateway } from '../helpers/gateway.js';
import { type MockProvider, startMockProvider } from '../mocks/provider.js';
import { type MockStripe, startMockStripe } from '../mocks/stripe.js';

const MODEL = 'openai/gpt-4o-mini';
const DAY = 86_400_000;

describe.each(DATABASES)('free trial (%s)', (kind) => {
  let or: MockProvider;
  let stripe: MockStripe;
  let g: RunningGateway;

  beforeAll(async () => {
    or = await startMockProvider('openrouter');
    stripe = await startMockStripe();
    const db = await createTestDatabase(kind);
    g = await startGateway(db, {
      OPENROUTER_API_KEY: 'k',
      OPENROUTER_BASE_URL: or.url,
      STRIPE_SECRET_KEY: stripe.secretKey,
      STRIPE_WEBHOOK_SECRET: stripe.webhookSecret,
      STRIPE_BASE_URL: stripe.url,
      JOBS_INTERVAL_MS: '0',
    });
  });
  afterAll(async () => {
    await g?.close();
    await g?.db.drop();
    await or?.close();
    await stripe?.close();
  });

  const call = (key: string, path: string, body?: unknown) =>
    fetch(g.url + path, {
      method: body === undefined ? 'GET' : 'POST',
      headers: {
        authorization: `Bearer ${key}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  const json = async (r: Response) => (await r.json()) as any;
  const bal = async (userId: string) => (await g.gw.billing.balance(userId))!;
  const ledger = (userId: string) =>
    g.gw.db.db.selectFrom('ledger').selectAll().where('user_id', '=', userId).orderBy('id').execute();
  const chat = (key: string) =>
    new OpenAI({ apiKey: key, baseURL: g.v1, maxRetries: 0 }).chat.completions.create({
      model: MODEL,
      messages: [{ role: 'user', content: 'hello trial' }],
      max_tokens: 50,
    });

  it('starts once: repeated and concurrent starts give one trial and one grant', async () => {
    const u = await g.createUser(0);
    const first = await json(await call(u.apiKey, '/trials/start', {}));
    expect(first.started).toBe(true);
    expect(first.is_active).toBe(true);
    expect(first.remaining_credits).toBe(10);
    expect(first.remaining_tokens).toBe(100_000);
    expect(first.remaining_requests).toBe(1_000);
    expect(Date.parse(first.end_date) - Date.now()).toBeGreaterThan(3 * DAY - 60_000);
    const again = await Promise.all(
      Array.from({ length: 8 }, () => call(u.apiKey, '/trials/start', {}).then(json)),
    );
    expect(again.every((a) => a.started === false)).toBe(true);
    const grants = (await ledger(u.userId)).filter((r) => r.kind === 'trial_grant');
    expect(grants).toHaveLength(1);
    expect(grants[0]!.bucket).toBe('trial');
    expect(grants[0]!.reference).toBe(`trial:${u.userId}`);
    expect((await bal(u.userId)).trial_balance_micros).toBe(10_000_000);
    expect(await g.gw.billing.ledgerSum(u.userId, 'trial')).toBe(10_000_000);
    const alias = await json(await call(u.apiKey, '/trial/status'));
    expect(alias.is_active).toBe(true);
    const balance = await json(await call(u.apiKey, '/user/balance'));
    expect(balance).toMatchObject({ credits: 0, trial_credits: 10, available: 10 });
    expect(balance.trial).toMatchObject({
      is_active: true,
      remaining_tokens: 100_000,
      remaining_requests: 1_000,
    });

    // Concurrent first starts of a new user: still one.
    const v = await g.createUser(0);
    const rs = await Promise.all(
      Array.from({ length: 6 }, () => call(v.apiKey, '/trials/start', {}).then(json)),
    );
    expect(rs.filter((r) => r.started === true)).toHaveLength(1);
    expect((await ledger(v.userId)).filter((r) => r.kind === 'trial_grant')).toHaveLength(1);
  });

  it('trial credits are spent at real prices before paid credits', async () => {
    const u = await g.createUser(5);
    await call(u.apiKey, '/trials/start', {});
    const r = await chat(u.apiKey);
    const cost = (r as any).gateway_usage.cost_micros as number;
    expect(cost).toBeGreaterThan(0);
    const b = await bal(u.userId);
    expect(b.balance_micros).toBe(5_000_000);
    expect(b.trial_balance_micros).toBe(10_000_000 - cost);
    const usage = (await ledger(u.userId)).filter((x) => x.kind === 'usage');
    expect(usage.map((x) => [x.bucket, x.amount_micros])).toEqual([['trial', -cost]]);
    const st = await json(await call(u.apiKey, '/trials/status'));
    expect(st.remaining_requests).toBe(999);
    expect(st.remaining_tokens).toBeLessThan(100_000);

    // Leave 5 micro-dollars of trial credit: the next request takes 5 from the trial, the rest from paid.
    await g.gw.billing.post(
      { userId: u.userId, kind: 'test_adjust', bucket: 'trial', amount: -(10_000_000 - cost - 5) },
      Date.now(),
    );
    const r2 = await chat(u.apiKey);
    const cost2 = (r2 as any).gateway_usage.cost_micros as number;
    expect(cost2).toBeGreaterThan(5);
    const rows = (await ledger(u.userId)).filter((x) => x.kind === 'usage').slice(1);
    expect(rows.map((x) => [x.bucket, x.amount_micros])).toEqual([
      ['trial', -5],
      ['paid', -(cost2 - 5)],
    ]);
    const after = await bal(u.userId);
    expect(after.trial_balance_micros).toBe(0);
    expect(after.balance_micros).toBe(5_000_000 - (cost2 - 5));
    expect(await g.gw.billing.ledgerSum(u.userId)).toBe(after.balance_micros);
    expect(await g.gw.billing.ledgerSum(u.userId, 'trial')).toBe(0);
  });

  it('expires on time and the remainder is removed through the ledger', async () => {
    const u = await g.createUser(0);
    const st = await json(await call(u.apiKey, '/trials/start', {}));
    await chat(u.apiKey);
    const endsAt = Date.parse(st.end_date);
    const left = (await bal(u.userId)).trial_balance_micros!;
    expect(left).toBeGreaterThan(0);
    await g.gw.commerce.trials.expireDue(endsAt - 1);
    expect((await bal(u.userId)).trial_balance_micros).toBe(left);
    await g.gw.commerce.trials.expireDue(endsAt);
    await g.gw.commerce.trials.expireDue(endsAt + 1000);
    expect((await bal(u.userId)).trial_balance_micros).toBe(0);
    const removed = (await ledger(u.userId)).filter((x) => x.kind === 'trial_expired');
    expect(removed.map((x) => x.amount_micros)).toEqual([-left]);
    expect(removed[0]!.bucket).toBe('trial');
    expect(await g.gw.billing.ledgerSum(u.userId, 'trial')).toBe(0);
    const status = await json(await call(u.apiKey, '/trials/status'));
    expect(status.is_active).toBe(false);
    expect(status.status).toBe('expired');
    expect(status.remaining_credits).toBe(0);
    // Without paid credits the user cannot spend any more.
    await expect(chat(u.apiKey)).rejects.toMatchObject({ status: 402 });
    // And the trial cannot be started again.
    expect((await json(await call(u.apiKey, '/trials/start', {}))).started).toBe(false);
  });

  it('ends early at the request cap (all of the user’s keys count)', async () => {
    const u = await g.createUser(0);
    await call(u.apiKey, '/trials/start', {});
    await g.gw.db.db
      .updateTable('trials')
      .set({ requests_limit: 2 })
      .where('user_id', '=', u.userId)
      .execute();
    const second = await call(u.apiKey, '/user/api-keys', { key_name: 'second' });
    expect(second.status).toBe(201);
    const key2 = (await json(second)).api_key as string;
    await chat(u.apiKey);
    await chat(key2);
    await expect(chat(key2)).rejects.toMatchObject({ status: 402 });
    await expect(chat(u.apiKey)).rejects.toMatchObject({ status: 402 });
    const t = await g.gw.commerce.trials.get(u.userId);
    expect(t!.status).toBe('expired');
    expect(t!.end_reason).toBe('request_limit');
    expect((await bal(u.userId)).trial_balance_micros).toBe(0);
  });

  it('converts on the first purchase: caps stop, credits stay until the end date', async () => {
    const u = await g.createUser(0);
    await call(u.apiKey, '/trials/start', {});
    const co = await json(await call(u.apiKey, '/payments/checkout', { amount: 10 }));
    const event = stripe.completedEvent(co.session_id);
    const payload = JSON.stringify(event);
    const r = await fetch(`${g.url}/stripe/webhook`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'stripe-signature': stripe.sign(payload) },
      body: payload,
    });
    expect(r.status).toBe(200);
    const t = await g.gw.commerce.trials.get(u.userId);
    expect(t!.status).toBe('converted');
    const b = await bal(u.userId);
    expect(b.balance_micros).toBe(10_000_000);
    expect(b.trial_balance_micros).toBe(10_000_000);
    await g.gw.db.db
      .updateTable('trials')
      .set({ requests_limit: 0 })
      .where('user_id', '=', u.userId)
      .execute();
    const res = await chat(u.apiKey);
    expect((res as any).gateway_usage.cost_micros).toBeGreaterThan(0);
    await g.gw.commerce.trials.expireDue(t!.ends_at);
    expect((await bal(u.userId)).trial_balance_micros).toBe(0);
    expect((await g.gw.commerce.trials.get(u.userId))!.status).toBe('converted');
  });
  it('counts every request and token exactly under concurrency', async () => {
    const u = await g.createUser(0);
    await call(u.apiKey, '/trials/start', {});
    const results = await Promise.all(Array.from({ length: 12 }, () => chat(u.apiKey)));
    const tokens = results.reduce((n, r) => n + r.usage!.prompt_tokens + r.usage!.completion_tokens, 0);
    const cost = results.reduce((n, r) => n + ((r as any).gateway_usage.cost_micros as number), 0);
    expect(tokens).toBeGreaterThan(0);
    const t = (await g.gw.commerce.trials.get(u.userId))!;
    expect(t.requests_used).toBe(12);
    expect(t.tokens_used).toBe(tokens);
    expect((await bal(u.userId)).trial_balance_micros).toBe(10_000_000 - cost);
    expect(await g.gw.billing.ledgerSum(u.userId, 'trial')).toBe(10_000_000 - cost);
    const st = await json(await call(u.apiKey, '/trials/status'));
    expect(st.remaining_requests).toBe(1_000 - 12);
    expect(st.remaining_tokens).toBe(100_000 - tokens);
  });

  it('ends at the token cap once a request has used it up', async () => {
    const u = await g.createUser(0);
    await call(u.apiKey, '/trials/start', {});
    await g.gw.db.db.updateTable('trials').set({ tokens_limit: 5 }).where('user_id', '=', u.userId).execute();
    const r = await chat(u.apiKey);
    expect(r.usage!.prompt_tokens + r.usage!.completion_tokens).toBeGreaterThan(5);
    const t = (await g.gw.commerce.trials.get(u.userId))!;
    expect(t.status).toBe('expired');
    expect(t.end_reason).toBe('token_limit');
    expect(t.requests_used).toBe(1);
    expect((await bal(u.userId)).trial_balance_micros).toBe(0);
    await expect(chat(u.apiKey)).rejects.toMatchObject({ status: 402 });
    expect((await g.gw.commerce.trials.get(u.userId))!.requests_used).toBe(1);
  });

  it.runIf(kind === 'sqlite')(
    'SQLite: a trial request is counted inside the billing group commit, not by a COMMIT of its own',
    async () => {
      const u = await g.createUser(0);
      await call(u.apiKey, '/trials/start', {});
      await chat(u.apiKey); // the trial's state is cached: admitting reads nothing
      const commits = g.gw.billing.groupCommit!;
      const sqlite = g.gw.db.sqlite!;
      const before = (await g.gw.commerce.trials.get(u.userId))!;
      // A hold's turn: the group commit's transaction is open, as when a request's hold has just run.
      await commits.run(() => 0, false);
      expect(sqlite.inTransaction).toBe(true);
      const batches = commits.stats.batches;
      const done = await g.gw.commerce.trials.admit(u.userId);
      expect(done).toBeTypeOf('function');
      await done!(40);
      // Both counters ran in that transaction: nothing committed it (a statement of Kysely's would have).
      expect(commits.stats.batches).toBe(batches);
      expect(sqlite.inTransaction).toBe(true);
      const after = (await g.gw.commerce.trials.get(u.userId))!; // Kysely's read commits the batch first
      expect(commits.stats.batches).toBe(batches + 1);
      expect(after.requests_used).toBe(before.requests_used + 1);
      expect(after.tokens_used).toBe(before.tokens_used + 40);
    },
  );
});
