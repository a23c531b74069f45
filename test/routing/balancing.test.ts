import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Balancer } from '../../src/routing/balancer.js';
import { createTestDatabase, DATABASES } from '../helpers/db.js';
import { type RunningGateway, startGateway } from '../helpers/gateway.js';
import { writePriceConfig } from '../helpers/prices.js';
import { type MockProvider, startMockProvider } from '../mocks/provider.js';
import { chat, seeded } from './helpers.js';

const cands = [{ provider: 'openrouter' }, { provider: 'openai' }, { provider: 'chutes' }];
const spec = (weights: Record<string, number>, extra = {}) => ({
  m: { strategy: 'weighted' as const, weights, sticky: false, ...extra },
});

describe('balancer', () => {
  it('weighted balancing splits 1,000 requests within ±5% of the weights', () => {
    for (const seed of [1, 2, 3]) {
      const b = new Balancer(spec({ openrouter: 6, openai: 3, chutes: 1 }), undefined, seeded(seed));
      const n: Record<string, number> = { openrouter: 0, openai: 0, chutes: 0 };
      for (let i = 0; i < 1000; i++) n[b.order('m', cands)[0]!.provider]!++;
      expect(Math.abs(n.openrouter! / 1000 - 0.6)).toBeLessThanOrEqual(0.05);
      expect(Math.abs(n.openai! / 1000 - 0.3)).toBeLessThanOrEqual(0.05);
      expect(Math.abs(n.chutes! / 1000 - 0.1)).toBeLessThanOrEqual(0.05);
    }
  });

  it('the whole order is a fallback chain: every candidate is kept, zero-weight ones last', () => {
    const b = new Balancer(spec({ openrouter: 1, openai: 1 }), undefined, seeded(7));
    for (let i = 0; i < 50; i++) {
      const o = b.order('m', cands).map((c) => c.provider);
      expect(o).toHaveLength(3);
      expect(o[2]).toBe('chutes');
    }
  });

  it('latency-aware: the faster provider first, and in-flight load counts (peak-EWMA × in-flight)', () => {
    let now = 0;
    const b = new Balancer({ m: { strategy: 'latency', weights: {}, sticky: false } }, { now: () => now });
    b.begin('openrouter', 'm')(400);
    b.begin('openai', 'm')(100);
    b.begin('chutes', 'm')(250);
    expect(b.order('m', cands).map((c) => c.provider)).toEqual(['openai', 'chutes', 'openrouter']);
    // one slow sample takes over at once (peak-sensitive)
    b.begin('openai', 'm')(1000);
    expect(b.order('m', cands)[0]!.provider).toBe('chutes');
    // load: many calls in flight on chutes push it back
    const pending = [1, 2, 3, 4].map(() => b.begin('chutes', 'm'));
    expect(b.order('m', cands)[0]!.provider).not.toBe('chutes');
    for (const done of pending) done(250);
    now += 60_000; // old samples decay
    expect(b.latencyOf('openai', 'm')!).toBeLessThan(10);
  });

  it('sticky: the same user always gets the same order; users still spread by weight', () => {
    const b = new Balancer(spec({ openrouter: 1, openai: 1 }, { sticky: true }), undefined, seeded(3));
    const first = (key: string) => b.order('m', cands, { key, asked: false })[0]!.provider;
    for (const u of ['usr_a', 'usr_b', 'usr_c']) {
      const p = first(u);
      for (let i = 0; i < 20; i++) expect(first(u)).toBe(p);
    }
    let or = 0;
    for (let i = 0; i < 400; i++) if (first(`usr_${i}`) === 'openrouter') or++;
    expect(Math.abs(or / 400 - 0.5)).toBeLessThan(0.1);
  });
});

describe.each(DATABASES)('balancing end to end (%s)', (kind) => {
  let or: MockProvider;
  let oa: MockProvider;
  let g: RunningGateway;
  beforeAll(async () => {
    or = await startMockProvider('openrouter');
    oa = await startMockProvider('openai');
    const db = await createTestDatabase(kind);
    g = await startGateway(db, {
      OPENROUTER_API_KEY: 'or',
      OPENROUTER_BASE_URL: or.url,
      OPENAI_API_KEY: 'oa',
      OPENAI_BASE_URL: oa.url,
      GATEWAYZ_CONFIG: writePriceConfig(db.dataDir, {
        balancing: { 'openai/gpt-4o-mini': { weights: { openrouter: 3, openai: 1 } } },
      }),
    });
  });
  afterAll(async () => {
    await g?.close();
    await g?.db.drop();
    await Promise.all([or, oa].map((m) => m?.close()));
  });

  it('config weights 3:1 split real traffic accordingly (200 requests, ±10%)', async () => {
    // five users, two requests in flight each (plans cap a user's concurrency)
    const users = await Promise.all([1, 2, 3, 4, 5].map(() => g.createUser(5)));
    const counts: Record<string, number> = {};
    for (let batch = 0; batch < 20; batch++) {
      const rs = await Promise.all(Array.from({ length: 10 }, (_, i) => chat(g, users[i % 5]!.apiKey, {})));
      for (const r of rs) {
        expect(r.status).toBe(200);
        const p = r.headers.get('x-gatewayz-provider')!;
        counts[p] = (counts[p] ?? 0) + 1;
      }
    }
    expect(Math.abs((counts.openrouter ?? 0) / 200 - 0.75)).toBeLessThanOrEqual(0.1);
    expect((counts.openrouter ?? 0) + (counts.openai ?? 0)).toBe(200);
  });

  it('x-gatewayz-sticky keeps one user on one provider', async () => {
    const seen = new Set<string>();
    for (let k = 0; k < 6; k++) {
      const u = await g.createUser(1);
      const mine = new Set<string>();
      for (let i = 0; i < 8; i++) {
        const r = await chat(g, u.apiKey, {}, { 'x-gatewayz-sticky': 'true' });
        mine.add(r.headers.get('x-gatewayz-provider')!);
      }
      expect(mine.size).toBe(1);
      seen.add([...mine][0]!);
    }
    expect(seen.size).toBeGreaterThanOrEqual(1);
  });

  it('an explicit provider order wins over balancing', async () => {
    const u = await g.createUser(1);
    for (let i = 0; i < 10; i++) {
      const r = await chat(g, u.apiKey, { provider: { order: ['openai'] } });
      expect(r.headers.get('x-gatewayz-provider')).toBe('openai');
    }
  });
});
