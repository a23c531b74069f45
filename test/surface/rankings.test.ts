import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, DATABASES } from '../helpers/db.js';
import { type RunningGateway, startGateway } from '../helpers/gateway.js';
import { type MockProvider, startMockProvider } from '../mocks/provider.js';

const A = 'openai/gpt-4o-mini';
const B = 'anthropic/claude-3.5-sonnet';
const C = 'vendor/weekly-only';
const FREE = 'meta-llama/llama-3.1-8b-instruct:free';
const HOUR = 3_600_000;
const DAY = 24 * HOUR;

describe.each(DATABASES)('rankings (%s)', (kind) => {
  let or: MockProvider;
  let g: RunningGateway;
  let n = 0;

  beforeAll(async () => {
    or = await startMockProvider('openrouter');
    const db = await createTestDatabase(kind);
    g = await startGateway(db, { OPENROUTER_API_KEY: 'k', OPENROUTER_BASE_URL: or.url });
    const now = Date.now();
    const row = (model: string, ago: number, o: Partial<Record<string, unknown>> = {}) => ({
      request_id: `req_rank_${n++}`,
      user_id: 'usr_1',
      key_id: null,
      endpoint: 'chat.completions',
      model,
      provider: 'openrouter',
      prompt_tokens: 10,
      completion_tokens: 5,
      cached_tokens: 0,
      reasoning_tokens: 0,
      cost_micros: 1,
      latency_ms: 100,
      status: 'ok',
      stream: 0,
      app: null,
      created_at: now - ago,
      ...o,
    });
    const rows = [
      // A, last day: 5 requests (one failed), 3 users, ok latencies 100/300/200/400 → median 250
      row(A, HOUR, { latency_ms: 100, user_id: 'usr_1', app: 'MyApp' }),
      row(A, 2 * HOUR, { latency_ms: 300, user_id: 'usr_2', app: 'MyApp' }),
      row(A, 3 * HOUR, { latency_ms: 200, user_id: 'usr_1', app: 'Other' }),
      row(A, 4 * HOUR, { latency_ms: 400, user_id: 'usr_3' }),
      row(A, 5 * HOUR, { latency_ms: 5000, status: 'error_502', prompt_tokens: 0, completion_tokens: 0 }),
      // A, the day before: 2 requests → growth (5 − 2) / 2 = 1.5
      row(A, DAY + HOUR),
      row(A, DAY + 2 * HOUR),
      // B, last day: 3 big requests, median of 10/30/20 = 20, nothing the day before
      row(B, HOUR, { latency_ms: 10, prompt_tokens: 1000, completion_tokens: 500, app: 'MyApp' }),
      row(B, HOUR, { latency_ms: 30, prompt_tokens: 1000, completion_tokens: 500, user_id: 'usr_9' }),
      row(B, HOUR, { latency_ms: 20, prompt_tokens: 1000, completion_tokens: 500, status: 'client_abort' }),
      // C: three days ago only (in the week, not in the day)
      row(C, 3 * DAY, { latency_ms: 70 }),
      // older than two months: in no window
      row(A, 70 * DAY),
    ];
    await g.gw.db.db.insertInto('usage_records').values(rows).execute();
  });
  afterAll(async () => {
    await g?.close();
    await g?.db.drop();
    await or?.close();
  });

  const get = async (path: string) => {
    const res = await fetch(g.url + path);
    return { status: res.status, body: (await res.json()) as any };
  };

  it('a real request through the gateway is attributed to its X-Title app', async () => {
    const u = await g.createUser(1);
    const client = new OpenAI({
      apiKey: u.apiKey,
      baseURL: g.v1,
      maxRetries: 0,
      defaultHeaders: { 'X-Title': 'RealApp', 'HTTP-Referer': 'https://realapp.example' },
    });
    await client.chat.completions.create({ model: FREE, messages: [{ role: 'user', content: 'hello' }] });
    const apps = (await get('/ranking/apps?window=day')).body;
    expect(apps.window).toBe('day');
    const real = apps.data.find((a: any) => a.app === 'RealApp');
    expect(real).toMatchObject({ requests: 1, users: 1, models: 1 });
    const my = apps.data.find((a: any) => a.app === 'MyApp');
    expect(my).toMatchObject({ requests: 3, total_tokens: 15 + 15 + 1500, users: 2, models: 2 });
    expect(apps.data[0].app).toBe('MyApp'); // most tokens first
    expect(apps.data.map((a: any) => a.app).sort()).toEqual(['MyApp', 'Other', 'RealApp']);
    expect(apps.data.map((a: any) => a.rank)).toEqual([1, 2, 3]);
  });

  it('models over a day: requests, tokens, users, median latency, error rate, growth, joined with the catalog', async () => {
    const r = await get('/ranking/models?window=day');
    expect(r.status).toBe(200);
    const byId = new Map(r.body.data.map((m: any) => [m.model, m]));
    expect(r.body.data[0].model).toBe(B); // by tokens
    const a = byId.get(A) as any;
    expect(a).toMatchObject({
      requests: 5,
      prompt_tokens: 40,
      completion_tokens: 20,
      total_tokens: 60,
      users: 3,
      median_latency_ms: 250,
      error_rate: 0.2,
      growth: { requests: 1.5 },
      previous: { requests: 2, total_tokens: 30 },
      provider: 'openrouter',
      context_length: 128000,
      pricing: { prompt_usd_per_million: 0.15, completion_usd_per_million: 0.6 },
    });
    expect(a.name).toBeTruthy();
    const b = byId.get(B) as any;
    // a client abort is not an upstream error, and is not in the latency median
    expect(b).toMatchObject({
      requests: 3,
      users: 2,
      median_latency_ms: 20,
      error_rate: 0,
      growth: { requests: null },
    });
    expect(byId.has(C)).toBe(false);
    expect(byId.get(C)).toBeUndefined();

    const byRequests = (await get('/ranking/models?window=day&sort=requests')).body.data;
    expect(byRequests[0].model).toBe(A);
    const fastest = (await get('/ranking/models?window=day&sort=latency')).body.data;
    const pos = (id: string) => fastest.findIndex((m: any) => m.model === id);
    expect(pos(B)).toBeLessThan(pos(A)); // 20 ms before 250 ms
    const medians = fastest.map((m: any) => m.median_latency_ms);
    expect(medians).toEqual([...medians].sort((x: number, y: number) => x - y));
  });

  it('week and month windows include older usage; the median of an even count interpolates', async () => {
    const week = (await get('/ranking/models?window=week')).body.data;
    const a = week.find((m: any) => m.model === A);
    // 7 requests in the week: ok latencies 100,300,200,400,100,100 → sorted 100,100,100,200,300,400 → (100+200)/2
    expect(a).toMatchObject({ requests: 7, median_latency_ms: 150 });
    const c = week.find((m: any) => m.model === C);
    expect(c).toMatchObject({ requests: 1, median_latency_ms: 70, name: C, pricing: null, provider: null });
    const month = (await get('/ranking/models?window=month&limit=1')).body;
    expect(month.data).toHaveLength(1);
    expect(month.data[0].rank).toBe(1);
    expect(month.window).toBe('month');
  });

  it('bad parameters → 400 in OpenAI shape', async () => {
    for (const q of ['window=year', 'sort=price', 'limit=0', 'limit=abc']) {
      const r = await get(`/ranking/models?${q}`);
      expect(r.status, q).toBe(400);
      expect(r.body.error.type).toBe('invalid_request_error');
    }
    expect((await get('/ranking/apps?window=decade')).status).toBe(400);
  });
});
