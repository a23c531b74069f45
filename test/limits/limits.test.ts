import OpenAI from 'openai';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createTestDatabase, DATABASES } from '../helpers/db.js';
import { type RunningGateway, startGateway } from '../helpers/gateway.js';
import { type MockProvider, startMockProvider } from '../mocks/provider.js';
import { BACKENDS, backendEnv, chat, getJson, MODEL, setLimits } from './helpers.js';

const CASES = DATABASES.flatMap((db) => BACKENDS.map((b) => [db, b] as const));

describe.each(CASES)('rate limits (%s, %s)', (kind, backend) => {
  let up: MockProvider;
  let g: RunningGateway;
  let now = Date.now();
  const clock = () => now;

  beforeAll(async () => {
    up = await startMockProvider('openrouter');
    const db = await createTestDatabase(kind);
    g = await startGateway(db, {
      OPENROUTER_API_KEY: 'or-key',
      OPENROUTER_BASE_URL: up.url,
      ...backendEnv(backend),
    });
    g.gw.limits.service.setClock(clock);
  });
  afterAll(async () => {
    await g?.close();
    await g?.db.drop();
    await up?.close();
  });
  beforeEach(() => {
    up.reset();
    up.options.latencyMs = 0;
  });

  it('requests per minute: refused before the upstream call with OpenAI headers; the window rolls', async () => {
    const u = await g.createUser(5);
    await setLimits(g, { key_id: u.keyId, requests_per_minute: 3, reason: 'test' });
    const ok = [];
    for (let i = 0; i < 3; i++) ok.push(await chat(g.url, u.apiKey));
    expect(ok.map((r) => r.status)).toEqual([200, 200, 200]);
    expect(ok[0]!.headers.get('x-ratelimit-limit-requests')).toBe('3');
    expect(ok[0]!.headers.get('x-ratelimit-remaining-requests')).toBe('2');
    expect(ok[2]!.headers.get('x-ratelimit-remaining-requests')).toBe('0');
    expect(ok[2]!.headers.get('x-ratelimit-reset-requests')).toMatch(/^(\d+m)?\d+(\.\d+)?s$|^\d+ms$/);
    const refused = await chat(g.url, u.apiKey);
    expect(refused.status).toBe(429);
    expect(refused.body.error.type).toBe('requests_per_minute_exceeded');
    expect(refused.body.error.code).toBe('rate_limit_exceeded');
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThanOrEqual(59);
    expect(refused.headers.get('x-ratelimit-remaining-requests')).toBe('0');
    expect(refused.headers.get('x-gatewayz-provider')).toBeNull();
    expect(up.calls.length).toBe(3); // never reached the provider

    // the openai client sees a RateLimitError naming the limit
    const client = new OpenAI({ apiKey: u.apiKey, baseURL: g.v1, maxRetries: 0 });
    const err = await client.chat.completions
      .create({ model: MODEL, messages: [{ role: 'user', content: 'hi' }] })
      .catch((e) => e);
    expect(err).toBeInstanceOf(OpenAI.RateLimitError);
    expect(err.type).toBe('requests_per_minute_exceeded');

    now += 30_000; // still inside the minute
    expect((await chat(g.url, u.apiKey)).status).toBe(429);
    now += 32_000; // the window has rolled past the first requests
    const again = await chat(g.url, u.apiKey);
    expect(again.status).toBe(200);
    expect(up.calls.length).toBe(4);
  });

  it('tokens per minute: in-flight reservations refuse the call that would exceed; unused tokens come back', async () => {
    const u = await g.createUser(5);
    await setLimits(g, { key_id: u.keyId, tokens_per_minute: 1000 });
    up.options.latencyMs = 300;
    // three concurrent requests reserving ~410 tokens each: the third would exceed 1000
    const rs = await Promise.all([0, 1, 2].map(() => chat(g.url, u.apiKey, { maxTokens: 400 })));
    const statuses = rs.map((r) => r.status).sort();
    expect(statuses).toEqual([200, 200, 429]);
    const refused = rs.find((r) => r.status === 429)!;
    expect(refused.body.error.type).toBe('tokens_per_minute_exceeded');
    expect(refused.headers.get('retry-after')).toBeTruthy();
    expect(refused.headers.get('x-ratelimit-limit-tokens')).toBe('1000');
    expect(up.calls.length).toBe(2);
    up.options.latencyMs = 0;

    // only the real usage stays counted: 2 × ~22 tokens, so a 900-token reservation fits again
    const charged = rs
      .filter((r) => r.status === 200)
      .reduce((n, r) => n + r.body.usage.prompt_tokens + r.body.usage.completion_tokens, 0);
    // (the refund lands just after the response went out)
    let tpmUsed = -1;
    for (let i = 0; i < 20 && tpmUsed !== charged; i++) {
      if (i) await new Promise((r) => setTimeout(r, 10));
      const mine = await getJson(`${g.url}/user/rate-limits`, u.apiKey);
      tpmUsed = mine.body.key.usage.windows.find((w: any) => w.limit === 'tokens_per_minute').used;
    }
    expect(tpmUsed).toBe(charged);
    const big = await chat(g.url, u.apiKey, { maxTokens: 900 });
    expect(big.status).toBe(200);
    const used = charged + big.body.usage.prompt_tokens + big.body.usage.completion_tokens;
    expect(Number(big.headers.get('x-ratelimit-remaining-tokens'))).toBeLessThan(1000 - used);

    // a request larger than the whole limit can never pass: no Retry-After, no upstream call
    const calls = up.calls.length;
    const huge = await chat(g.url, u.apiKey, { maxTokens: 5000 });
    expect(huge.status).toBe(429);
    expect(huge.body.error.code).toBe('request_too_large');
    expect(huge.headers.get('retry-after')).toBeNull();
    expect(up.calls.length).toBe(calls);
  });

  it('concurrency: never more in flight than the limit; released on every exit path, streams included', async () => {
    const u = await g.createUser(5);
    await setLimits(g, { key_id: u.keyId, concurrency: 2 });
    up.options.latencyMs = 900; // longer than RATE_LIMIT_CONCURRENCY_WAIT_MS (500): the extra requests time out waiting
    const rs = await Promise.all(Array.from({ length: 6 }, () => chat(g.url, u.apiKey)));
    const ok = rs.filter((r) => r.status === 200).length;
    const limited = rs.filter((r) => r.status === 429);
    expect(ok).toBeGreaterThanOrEqual(2);
    expect(limited.length).toBeGreaterThanOrEqual(1);
    expect(limited[0]!.body.error.type).toBe('concurrency_exceeded');
    expect(up.maxInFlight).toBeLessThanOrEqual(2);
    expect(up.calls.length).toBe(ok);
    up.options.latencyMs = 0;

    // a finished stream gives its slot back
    await setLimits(g, { key_id: u.keyId, concurrency: 1 });
    const s = await chat(g.url, u.apiKey, { stream: true });
    expect(s.status).toBe(200);
    expect((await chat(g.url, u.apiKey)).status).toBe(200);

    // a stream the client abandons gives it back too
    up.options.chunkIntervalMs = 100;
    const ac = new AbortController();
    const res = await fetch(`${g.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${u.apiKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: MODEL, stream: true, messages: [{ role: 'user', content: 'hi' }] }),
      signal: ac.signal,
    });
    expect(res.status).toBe(200);
    const reader = res.body!.getReader();
    await reader.read();
    ac.abort();
    up.options.chunkIntervalMs = 0;
    let status = 0;
    for (let i = 0; i < 50 && status !== 200; i++) {
      await new Promise((r) => setTimeout(r, 40));
      status = (await chat(g.url, u.apiKey)).status;
    }
    expect(status).toBe(200);

    // an upstream failure releases it as well
    up.faults.push({ type: 'status', status: 400 });
    expect((await chat(g.url, u.apiKey)).status).toBe(400);
    expect((await chat(g.url, u.apiKey)).status).toBe(200);
  });

  it('concurrency 1: back-to-back requests each find the slot of the one before free', async () => {
    // The release is sent, not awaited, before the answer: the next check follows it on the same
    // connection (Redis) or runs after it in the same process (memory), so none is refused.
    const u = await g.createUser(5);
    await setLimits(g, { key_id: u.keyId, concurrency: 1 });
    // no waiting for a slot (RATE_LIMIT_CONCURRENCY_WAIT_MS=0): a release that came late would be a 429
    const config = g.gw.limits.service.config as { concurrencyWaitMs: number };
    const wait = config.concurrencyWaitMs;
    config.concurrencyWaitMs = 0;
    try {
      for (let i = 0; i < 20; i++) {
        const r = await chat(g.url, u.apiKey, { stream: i % 2 === 1 });
        expect(r.status).toBe(200);
      }
    } finally {
      config.concurrencyWaitMs = wait;
    }
  });

  it('test keys get half of the user limits; users read theirs and cannot raise them', async () => {
    const res = await g.admin('/admin/create', {
      email: `t${Date.now()}@example.com`,
      credits: 5,
      environment_tag: 'test',
    });
    const t = (await res.json()) as { user_id: string; api_key: string; key_id: string };
    await setLimits(g, { user_id: t.user_id, requests_per_minute: 4, tokens_per_minute: 100_000 });
    const mine = await getJson(`${g.url}/user/rate-limits`, t.api_key);
    expect(mine.status).toBe(200);
    expect(mine.body.user.limits.requests_per_minute).toBe(4);
    expect(mine.body.key.limits.requests_per_minute).toBe(2);
    expect(mine.body.key.limits.tokens_per_minute).toBe(50_000);
    expect((await chat(g.url, t.api_key)).status).toBe(200);
    const second = await chat(g.url, t.api_key);
    expect(second.headers.get('x-ratelimit-limit-requests')).toBe('2');
    const third = await chat(g.url, t.api_key);
    expect(third.status).toBe(429);
    expect(third.body.error.message).toContain(`key ${t.key_id}`);

    // no way for a user to change limits
    const post = await fetch(`${g.url}/admin/rate-limits`, {
      method: 'POST',
      headers: { authorization: `Bearer ${t.api_key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ user_id: t.user_id, requests_per_minute: 1000 }),
    });
    expect(post.status).toBe(403);
    const own = await fetch(`${g.url}/user/rate-limits`, {
      method: 'POST',
      headers: { authorization: `Bearer ${t.api_key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ requests_per_minute: 1000 }),
    });
    expect(own.status).toBe(404);
    expect((await chat(g.url, t.api_key)).status).toBe(429);
  });

  it('every inference endpoint is limited: /v1/messages answers 429 in Anthropic shape', async () => {
    const u = await g.createUser(5);
    await setLimits(g, { key_id: u.keyId, requests_per_minute: 1 });
    const send = () =>
      fetch(`${g.url}/v1/messages`, {
        method: 'POST',
        headers: {
          'x-api-key': u.apiKey,
          'anthropic-version': '2023-06-01',
          'content-type': 'application/json',
        },
        body: JSON.stringify({ model: MODEL, max_tokens: 50, messages: [{ role: 'user', content: 'hi' }] }),
      });
    const first = await send();
    expect(first.status).toBe(200);
    expect(first.headers.get('x-ratelimit-remaining-requests')).toBe('0');
    const second = await send();
    expect(second.status).toBe(429);
    expect(second.headers.get('retry-after')).toBeTruthy();
    expect(((await second.json()) as any).error.type).toBe('rate_limit_error');
  });

  it('admin routes validate, list and audit; headers ride on error responses too', async () => {
    const u = await g.createUser(5);
    const both = await g.admin('/admin/rate-limits', { user_id: u.userId, key_id: u.keyId, concurrency: 1 });
    expect(both.status).toBe(400);
    const neg = await g.admin('/admin/rate-limits', { user_id: u.userId, requests_per_minute: -1 });
    expect(neg.status).toBe(400);
    const missing = await g.admin('/admin/rate-limits', { key_id: 'key_nope', requests_per_minute: 1 });
    expect(missing.status).toBe(404);

    const set = await setLimits(g, {
      user_id: u.userId,
      requests_per_hour: 50,
      tokens_per_month: 7_000_000,
      reason: 'abuse',
    });
    expect(set.override.requests_per_hour).toBe(50);
    expect(set.override.reason).toBe('abuse');
    const list = await (await g.admin(`/admin/rate-limits?user_id=${u.userId}`, undefined, 'GET')).json();
    expect(list.data).toHaveLength(1);
    expect(list.effective.limits.requests_per_hour).toBe(50);
    expect(list.effective.limits.tokens_per_month).toBe(7_000_000);
    expect(list.effective.override.requests_per_minute).toBeNull();

    // the limit headers come with an error after the guard (unknown model → 404) as well
    const bad = await chat(g.url, u.apiKey, { model: 'no/such-model' });
    expect(bad.status).toBeGreaterThanOrEqual(400);
    expect(bad.headers.get('x-ratelimit-limit-requests')).toBe('50');
    expect(bad.headers.get('x-ratelimit-remaining-requests')).toBe('49');

    await g.gw.audit.flush();
    const rows = await g.gw.db.db
      .selectFrom('audit_logs')
      .selectAll()
      .where('action', '=', 'rate_limits.set')
      .where('resource_id', '=', u.userId)
      .execute();
    expect(rows).toHaveLength(1);
    expect(JSON.parse(rows[0]!.details as string).reason).toBe('abuse');
  });

  it('plan usage: today and this month against the plan, from the plan source the commerce feature plugs in', async () => {
    const u = await g.createUser(5);
    const svc = g.gw.limits.service;
    const previous = svc.getPlanSource();
    try {
      svc.setPlanSource(async (userId) =>
        userId === u.userId
          ? {
              requestsPerDay: 3,
              requestsPerMonth: 100,
              tokensPerDay: 10_000,
              tokensPerMonth: null,
              maxConcurrent: 5,
            }
          : null,
      );
      const a = await chat(g.url, u.apiKey);
      const b = await chat(g.url, u.apiKey);
      expect([a.status, b.status]).toEqual([200, 200]);
      let usage = await getJson(`${g.url}/user/plan/usage`, u.apiKey);
      // the last request's slot is released just after its response went out
      for (let i = 0; i < 20 && usage.body.concurrency?.in_flight !== 0; i++) {
        await new Promise((r) => setTimeout(r, 10));
        usage = await getJson(`${g.url}/user/plan/usage`, u.apiKey);
      }
      expect(usage.status).toBe(200);
      const tokens =
        a.body.usage.prompt_tokens +
        a.body.usage.completion_tokens +
        b.body.usage.prompt_tokens +
        b.body.usage.completion_tokens;
      expect(usage.body.plan.requests_per_day).toBe(3);
      expect(usage.body.today.requests).toEqual({ used: 2, limit: 3, remaining: 1 });
      expect(usage.body.today.tokens).toEqual({ used: tokens, limit: 10_000, remaining: 10_000 - tokens });
      expect(usage.body.month.requests).toEqual({ used: 2, limit: 100, remaining: 98 });
      expect(usage.body.month.tokens.limit).toBeNull();
      const midnight = new Date(now);
      midnight.setUTCHours(24, 0, 0, 0);
      expect(usage.body.today.resets_at).toBe(midnight.toISOString());
      expect(usage.body.concurrency).toEqual({ limit: 5, in_flight: 0 });
      // the daily quota holds: the third passes, the fourth is refused until tomorrow (UTC)
      expect((await chat(g.url, u.apiKey)).status).toBe(200);
      const fourth = await chat(g.url, u.apiKey);
      expect(fourth.status).toBe(429);
      expect(fourth.body.error.type).toBe('requests_per_day_exceeded');
      expect(Number(fourth.headers.get('retry-after'))).toBeLessThanOrEqual(86_400);
      const saved = now;
      now = midnight.getTime() + 1000;
      expect((await chat(g.url, u.apiKey)).status).toBe(200);
      now = saved;
    } finally {
      svc.setPlanSource(previous);
    }
  });
});

describe.each(DATABASES)('limits switched off and provider concurrency (%s)', (kind) => {
  let up: MockProvider;
  let g: RunningGateway;
  beforeAll(async () => {
    up = await startMockProvider('openrouter', { options: { latencyMs: 150 } });
    const db = await createTestDatabase(kind);
    g = await startGateway(db, {
      OPENROUTER_API_KEY: 'or-key',
      OPENROUTER_BASE_URL: up.url,
      RATE_LIMITS_ENABLED: 'false',
      DEFAULT_REQUESTS_PER_MINUTE: '1',
      PROVIDER_MAX_CONCURRENCY: 'openrouter=2',
    });
  });
  afterAll(async () => {
    await g?.close();
    await g?.db.drop();
    await up?.close();
  });

  it('RATE_LIMITS_ENABLED=false checks nothing; PROVIDER_MAX_CONCURRENCY caps requests in flight upstream', async () => {
    const users = await Promise.all([0, 1, 2].map(() => g.createUser(5)));
    const rs = await Promise.all(Array.from({ length: 8 }, (_, i) => chat(g.url, users[i % 3]!.apiKey)));
    expect(rs.map((r) => r.status)).toEqual(Array(8).fill(200));
    expect(rs[0]!.headers.get('x-ratelimit-limit-requests')).toBeNull();
    expect(up.maxInFlight).toBe(2);
    const health = await (await fetch(`${g.url}/health`)).json();
    expect(health.rate_limits.status).toBe('disabled');
  });
});
