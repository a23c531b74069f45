import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryResponseCache, RedisResponseCache, responseCacheKey } from '../../src/routing/cache.js';
import { createTestDatabase, DATABASES } from '../helpers/db.js';
import { type RunningGateway, startGateway } from '../helpers/gateway.js';
import { expectedMicros, writePriceConfig } from '../helpers/prices.js';
import { type MockProvider, startMockProvider } from '../mocks/provider.js';
import { chat, moneyOf, PRICE, sseEvents, streamText } from './helpers.js';

const usage = {
  promptTokens: 1,
  completionTokens: 2,
  cachedTokens: 0,
  cacheWriteTokens: 0,
  reasoningTokens: 0,
  units: 0,
};
const entry = (body: string) => ({
  kind: 'json' as const,
  body,
  usage,
  provider: 'p',
  model: 'm',
  createdAt: 0,
});

describe('response cache units', () => {
  it('keys: deterministic requests only; key order does not matter; any parameter changes the key; per user', () => {
    const a = { model: 'm', messages: [{ role: 'user', content: 'x' }], temperature: 0 };
    expect(responseCacheKey('u1', 'chat', a)).toBeTruthy();
    expect(responseCacheKey('u1', 'chat', { ...a, temperature: 0.7 })).toBeNull();
    expect(responseCacheKey('u1', 'chat', { ...a, temperature: 0.7, seed: 42 })).toBeTruthy();
    expect(responseCacheKey('u1', 'chat', { temperature: 0, messages: a.messages, model: 'm' })).toBe(
      responseCacheKey('u1', 'chat', a),
    );
    expect(responseCacheKey('u1', 'chat', { ...a, cache: true })).toBe(responseCacheKey('u1', 'chat', a));
    expect(responseCacheKey('u1', 'chat', { ...a, max_tokens: 5 })).not.toBe(
      responseCacheKey('u1', 'chat', a),
    );
    expect(responseCacheKey('u2', 'chat', a)).not.toBe(responseCacheKey('u1', 'chat', a));
  });

  it('memory LRU: bounded by bytes, evicts the least recently used, honours the TTL', async () => {
    let now = 0;
    const c = new MemoryResponseCache(3000, { now: () => now });
    await c.set('a', entry('x'.repeat(400)), 1000);
    await c.set('b', entry('y'.repeat(400)), 1000);
    expect(await c.get('a')).not.toBeNull(); // a is now the most recent
    await c.set('c', entry('z'.repeat(400)), 1000);
    expect(c.sizeBytes).toBeLessThanOrEqual(3000);
    expect(await c.get('b')).toBeNull(); // evicted
    expect(await c.get('a')).not.toBeNull();
    now += 1001;
    expect(await c.get('c')).toBeNull(); // expired
  });

  it.skipIf(!process.env.TEST_REDIS_URL)('Redis: shared entries with a TTL', async () => {
    const r = new Redis(process.env.TEST_REDIS_URL!);
    const prefix = `gwz-test:${Date.now()}:${Math.random().toString(36).slice(2)}:`;
    try {
      const c = new RedisResponseCache(r, prefix);
      await c.set('k', entry('{"a":1}'), 200);
      expect((await c.get('k'))?.body).toBe('{"a":1}');
      expect(await r.pttl(`${prefix}cache:k`)).toBeGreaterThan(0);
      await new Promise((res) => setTimeout(res, 250));
      expect(await c.get('k')).toBeNull();
    } finally {
      r.disconnect();
    }
  });
});

describe.each(DATABASES)('response cache end to end (%s)', (kind) => {
  let or: MockProvider;
  let g: RunningGateway; // hits free (default)
  let g2: RunningGateway; // hits at half price
  beforeAll(async () => {
    or = await startMockProvider('openrouter');
    const db = await createTestDatabase(kind);
    const env = { OPENROUTER_API_KEY: 'or', OPENROUTER_BASE_URL: or.url };
    g = await startGateway(db, { ...env, GATEWAYZ_CONFIG: writePriceConfig(db.dataDir) });
    const db2 = await createTestDatabase(kind);
    g2 = await startGateway(db2, { ...env, CACHE_HIT_PRICE_RATIO: '0.5' });
  });
  afterAll(async () => {
    await g?.close();
    await g2?.close();
    await g?.db.drop();
    await g2?.db.drop();
    await or?.close();
  });
  const chatCalls = () => or.calls.filter((c) => c.path.endsWith('/chat/completions')).length;

  it('a hit returns the same body without an upstream call, billed free and recorded as cache_hit', async () => {
    const u = await g.createUser(1);
    const body = { temperature: 0, cache: true, messages: [{ role: 'user', content: 'cache me please' }] };
    const miss = await chat(g, u.apiKey, body);
    expect(miss.status).toBe(200);
    expect(miss.headers.get('x-gatewayz-cache')).toBe('miss');
    expect(or.calls.at(-1)!.body.cache).toBeUndefined(); // stripped upstream
    const calls = chatCalls();
    const before = await moneyOf(g, u.userId, miss.requestId);
    const hit = await chat(g, u.apiKey, body);
    expect(hit.status).toBe(200);
    expect(hit.headers.get('x-gatewayz-cache')).toBe('hit');
    expect(chatCalls()).toBe(calls);
    const { gateway_usage: gu1, ...rest1 } = miss.json;
    const { gateway_usage: gu2, ...rest2 } = hit.json;
    expect(rest2).toEqual(rest1);
    expect(gu2).toMatchObject({ cost_micros: 0, cache: 'hit' });
    const after = await moneyOf(g, u.userId, hit.requestId);
    expect(after.balance).toBe(before.balance);
    expect(after.charged).toBe(0);
    expect(after.held).toBe(0);
    expect(after.records).toHaveLength(1);
    expect(after.records[0]).toMatchObject({
      status: 'cache_hit',
      provider: 'openrouter',
      model: 'openai/gpt-4o-mini',
    });
    expect(Number(after.records[0]!.cost_micros)).toBe(0);
    expect(Number(after.records[0]!.completion_tokens)).toBe(gu1.completion_tokens);
  });

  it('different parameters miss; the header opts in too; non-deterministic requests bypass', async () => {
    const u = await g.createUser(1);
    const messages = [{ role: 'user', content: 'another prompt' }];
    const a = await chat(g, u.apiKey, { temperature: 0, messages }, { 'x-gatewayz-cache': 'true' });
    expect(a.headers.get('x-gatewayz-cache')).toBe('miss');
    const b = await chat(g, u.apiKey, { temperature: 0, messages }, { 'x-gatewayz-cache': 'true' });
    expect(b.headers.get('x-gatewayz-cache')).toBe('hit');
    const c = await chat(
      g,
      u.apiKey,
      { temperature: 0, max_tokens: 5, messages },
      { 'x-gatewayz-cache': 'true' },
    );
    expect(c.headers.get('x-gatewayz-cache')).toBe('miss');
    const d = await chat(g, u.apiKey, { seed: 7, messages }, { 'x-gatewayz-cache': 'true' });
    expect(d.headers.get('x-gatewayz-cache')).toBe('miss');
    const e = await chat(g, u.apiKey, { temperature: 1, messages }, { 'x-gatewayz-cache': 'true' });
    expect(e.headers.get('x-gatewayz-cache')).toBe('bypass');
    const f = await chat(g, u.apiKey, { temperature: 0, messages });
    expect(f.headers.get('x-gatewayz-cache')).toBeNull(); // not asked for: no cache at all
    // another user never sees this user's entries
    const v = await g.createUser(1);
    const w = await chat(g, v.apiKey, { temperature: 0, messages }, { 'x-gatewayz-cache': 'true' });
    expect(w.headers.get('x-gatewayz-cache')).toBe('miss');
  });

  it('a stream hit replays as a stream', async () => {
    const u = await g.createUser(1);
    const body = {
      temperature: 0,
      cache: true,
      stream: true,
      messages: [{ role: 'user', content: 'stream me' }],
    };
    const miss = await chat(g, u.apiKey, body);
    expect(miss.headers.get('x-gatewayz-cache')).toBe('miss');
    const calls = chatCalls();
    const hit = await chat(g, u.apiKey, body);
    expect(chatCalls()).toBe(calls);
    expect(hit.headers.get('x-gatewayz-cache')).toBe('hit');
    expect(hit.headers.get('content-type')).toMatch(/text\/event-stream/);
    expect(sseEvents(hit.text).at(-1)).toBe('[DONE]');
    expect(streamText(hit.text)).toBe(streamText(miss.text));
    expect(hit.text).toBe(miss.text);
    // a stream and a non-stream request are different entries
    const json = await chat(g, u.apiKey, { ...body, stream: false });
    expect(json.headers.get('x-gatewayz-cache')).toBe('miss');
  });

  it('a key listed in cacheKeys caches without asking per request', async () => {
    const u = await g.createUser(1);
    g.gw.routing.cacheSettings.keyIds.push(u.keyId);
    const body = { temperature: 0, messages: [{ role: 'user', content: 'per key' }] };
    expect((await chat(g, u.apiKey, body)).headers.get('x-gatewayz-cache')).toBe('miss');
    expect((await chat(g, u.apiKey, body)).headers.get('x-gatewayz-cache')).toBe('hit');
    const other = await g.createUser(1);
    expect((await chat(g, other.apiKey, body)).headers.get('x-gatewayz-cache')).toBeNull();
  });

  it('a hit goes through auth and the hold like any request (no side route)', async () => {
    const u = await g.createUser(1);
    const body = { temperature: 0, cache: true, messages: [{ role: 'user', content: 'guarded' }] };
    await chat(g, u.apiKey, body);
    const bad = await chat(g, 'gw_live_not-a-key', body);
    expect(bad.status).toBe(401);
  });

  it('CACHE_HIT_PRICE_RATIO bills a hit at that share of the original cost', async () => {
    const u = await g2.createUser(1);
    const body = { seed: 1, cache: true, messages: [{ role: 'user', content: 'half price please' }] };
    const miss = await chat(g2, u.apiKey, body);
    const m1 = await moneyOf(g2, u.userId, miss.requestId);
    const full = expectedMicros(
      miss.json.usage.prompt_tokens,
      miss.json.usage.completion_tokens,
      PRICE.prompt,
      PRICE.completion,
    );
    expect(m1.charged).toBe(full);
    const hit = await chat(g2, u.apiKey, body);
    expect(hit.headers.get('x-gatewayz-cache')).toBe('hit');
    const m2 = await moneyOf(g2, u.userId, hit.requestId);
    expect(m2.charged).toBe(Math.ceil(full * 0.5));
    expect(m2.records[0]!.status).toBe('cache_hit');
    expect(m2.balance).toBe(1_000_000 - full - Math.ceil(full * 0.5));
    expect(m2.ledgerSum).toBe(m2.balance);
  });
});
