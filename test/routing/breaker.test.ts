import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryBreakers, RedisBreakers } from '../../src/routing/breaker.js';
import { createTestDatabase, DATABASES } from '../helpers/db.js';
import { type RunningGateway, startGateway } from '../helpers/gateway.js';
import { writePriceConfig } from '../helpers/prices.js';
import { type MockProvider, startMockProvider } from '../mocks/provider.js';
import { chat, expectCharged } from './helpers.js';

class ManualClock {
  t = 1_700_000_000_000;
  now() {
    return this.t;
  }
  advance(ms: number) {
    this.t += ms;
  }
}

const SETTINGS = {
  failureThreshold: 3,
  errorRate: 0.5,
  minRequests: 10,
  windowMs: 60_000,
  cooldownMs: 30_000,
};

describe.each(DATABASES)('circuit breaker end to end (%s)', (kind) => {
  let or: MockProvider;
  let oa: MockProvider;
  let g: RunningGateway;
  const clock = new ManualClock();

  beforeAll(async () => {
    or = await startMockProvider('openrouter');
    oa = await startMockProvider('openai');
    const db = await createTestDatabase(kind);
    g = await startGateway(
      db,
      {
        OPENROUTER_API_KEY: 'or',
        OPENROUTER_BASE_URL: or.url,
        OPENAI_API_KEY: 'oa',
        OPENAI_BASE_URL: oa.url,
        PROVIDER_ORDER: 'openrouter,openai',
        GATEWAYZ_CONFIG: writePriceConfig(db.dataDir),
        UPSTREAM_MAX_RETRIES: '0',
        BREAKER_FAILURE_THRESHOLD: '3',
        BREAKER_COOLDOWN_MS: '30000',
      },
      { clock },
    );
  });
  afterAll(async () => {
    await g?.close();
    await g?.db.drop();
    await Promise.all([or, oa].map((m) => m?.close()));
  });

  const orCalls = () => or.calls.filter((c) => c.path.endsWith('/chat/completions')).length;
  const circuit = async () => {
    const p = (await (await fetch(`${g.url}/models/providers`)).json()) as any;
    const h = (await (await fetch(`${g.url}/health`)).json()) as any;
    const fromProviders = p.data.find((x: any) => x.name === 'openrouter').circuit.state;
    const fromHealth = h.providers.find((x: any) => x.name === 'openrouter').circuit;
    expect(fromHealth).toBe(fromProviders);
    return fromProviders as string;
  };

  it('a provider failing 100% opens its breaker; traffic moves to the fallback without client errors; a probe closes it', async () => {
    const u = await g.createUser(5);
    or.setDefaultFault({ type: 'status', status: 500 });
    expect(await circuit()).toBe('closed');
    // failures 1..3: each served by the fallback, nothing client-visible
    for (let i = 0; i < 3; i++) {
      const r = await chat(g, u.apiKey, {});
      expect(r.status).toBe(200);
      expect(r.headers.get('x-gatewayz-provider')).toBe('openai');
      expect(r.headers.get('x-gatewayz-attempts')).toBe('2');
    }
    expect(orCalls()).toBe(3);
    expect(await circuit()).toBe('open');
    // open: OpenRouter is not even tried
    for (let i = 0; i < 5; i++) {
      const r = await chat(g, u.apiKey, {});
      expect(r.status).toBe(200);
      expect(r.headers.get('x-gatewayz-provider')).toBe('openai');
      expect(r.headers.get('x-gatewayz-attempts')).toBe('1');
    }
    expect(orCalls()).toBe(3);
    // cool-down over, still broken: the one probe fails, the client still gets the fallback, breaker re-opens
    clock.advance(30_001);
    expect(await circuit()).toBe('half_open');
    let r = await chat(g, u.apiKey, {});
    expect(r.status).toBe(200);
    expect(r.headers.get('x-gatewayz-provider')).toBe('openai');
    expect(orCalls()).toBe(4);
    expect(await circuit()).toBe('open');
    r = await chat(g, u.apiKey, {});
    expect(orCalls()).toBe(4);
    // recovered: the next probe succeeds and closes the breaker
    or.setDefaultFault(null);
    clock.advance(30_001);
    const before = await g.gw.billing.balance(u.userId);
    r = await chat(g, u.apiKey, {});
    expect(r.status).toBe(200);
    expect(r.headers.get('x-gatewayz-provider')).toBe('openrouter');
    expect(await circuit()).toBe('closed');
    const usage = or.calls.at(-1)!.usage!;
    const initial = Number(before!.balance_micros) + Number((before as any).trial_balance_micros ?? 0);
    await expectCharged(g, u, r, initial, usage);
    r = await chat(g, u.apiKey, {});
    expect(r.headers.get('x-gatewayz-provider')).toBe('openrouter');
  });
});

describe('breaker state machine (memory)', () => {
  it('opens on consecutive failures, sheds, lets exactly one probe through, closes on success', async () => {
    const clock = new ManualClock();
    const b = new MemoryBreakers(SETTINGS, clock);
    expect(await b.acquire('p')).toBe(true);
    await b.failure('p');
    await b.failure('p');
    expect(await b.acquire('p')).toBe(true);
    await b.failure('p');
    expect(await b.acquire('p')).toBe(false);
    clock.advance(30_000);
    expect(await b.acquire('p')).toBe(true); // the probe
    expect(await b.acquire('p')).toBe(false); // only one
    await b.success('p');
    expect(await b.acquire('p')).toBe(true);
    expect((await b.view(['p']))[0]!.state).toBe('closed');
  });

  it('opens on the error rate even without consecutive failures', async () => {
    const clock = new ManualClock();
    const b = new MemoryBreakers({ ...SETTINGS, failureThreshold: 100 }, clock);
    for (let i = 0; i < 10; i++) {
      if (i % 2) await b.failure('p');
      else await b.success('p');
    }
    expect(await b.acquire('p')).toBe(false);
    expect((await b.view(['p']))[0]!.state).toBe('open');
  });

  it('a success resets the consecutive count', async () => {
    // error-rate trigger off (100%): only the consecutive count can open it here
    const b = new MemoryBreakers({ ...SETTINGS, errorRate: 1 }, new ManualClock());
    for (let i = 0; i < 5; i++) {
      await b.failure('p');
      await b.failure('p');
      await b.success('p');
    }
    expect(await b.acquire('p')).toBe(true);
    for (let i = 0; i < 3; i++) await b.failure('p');
    expect(await b.acquire('p')).toBe(false);
  });
});

describe.skipIf(!process.env.TEST_REDIS_URL)('breaker state shared through Redis', () => {
  let r1: Redis;
  let r2: Redis;
  const prefix = `gwz-test:${Date.now()}:${Math.random().toString(36).slice(2)}:`;
  beforeAll(() => {
    r1 = new Redis(process.env.TEST_REDIS_URL!);
    r2 = new Redis(process.env.TEST_REDIS_URL!);
  });
  afterAll(async () => {
    const keys = await r1.keys(`${prefix}*`);
    if (keys.length) await r1.del(...keys);
    r1.disconnect();
    r2.disconnect();
  });

  it('one instance opens it, another sheds; one probe across instances; success closes it for all', async () => {
    const clock = new ManualClock();
    const a = new RedisBreakers(r1, prefix, SETTINGS, clock);
    const b = new RedisBreakers(r2, prefix, SETTINGS, clock);
    await a.failure('openrouter');
    await b.failure('openrouter');
    expect(await a.acquire('openrouter')).toBe(true);
    await a.failure('openrouter');
    expect(await b.acquire('openrouter')).toBe(false);
    expect((await b.view(['openrouter']))[0]).toMatchObject({ state: 'open', consecutive_failures: 3 });
    clock.advance(30_000);
    expect(await b.acquire('openrouter')).toBe(true);
    expect(await a.acquire('openrouter')).toBe(false);
    await b.success('openrouter');
    expect(await a.acquire('openrouter')).toBe(true);
    expect((await a.view())[0]).toMatchObject({ key: 'openrouter', state: 'closed' });
  });

  it('a closed breaker costs no round trip: seen closed for 250 ms, successes sent as one increment', async () => {
    const clock = new ManualClock();
    const a = new RedisBreakers(r1, prefix, SETTINGS, clock);
    const b = new RedisBreakers(r2, prefix, SETTINGS, clock);
    const total = async () => Number(await r1.hget(`${prefix}breaker:quiet`, 'total'));
    expect(await a.acquire('quiet')).toBe(true);
    for (let i = 0; i < 5; i++) {
      expect(await a.acquire('quiet')).toBe(true);
      await a.success('quiet');
    }
    // Counted here, not yet in Redis.
    expect(await total()).toBe(0);
    await a.flush();
    expect(await total()).toBe(5);
    // Another instance opens it: this one sheds once its 250 ms view of "closed" has passed.
    for (let i = 0; i < 3; i++) await b.failure('quiet');
    expect(await a.acquire('quiet')).toBe(true);
    clock.advance(251);
    expect(await a.acquire('quiet')).toBe(false);
  });

  it('successes counted while closed never close a breaker opened since, and never reorder failures', async () => {
    const clock = new ManualClock();
    const a = new RedisBreakers(r1, prefix, SETTINGS, clock);
    const b = new RedisBreakers(r2, prefix, SETTINGS, clock);
    // Two failures elsewhere, then a success here: the next failure here counts 1 in a row, not 3.
    await b.failure('order');
    await b.failure('order');
    expect(await a.acquire('order')).toBe(true);
    await a.success('order');
    await a.failure('order');
    expect((await a.view(['order']))[0]).toMatchObject({ state: 'closed', consecutive_failures: 1 });

    expect(await a.acquire('late')).toBe(true);
    await a.success('late');
    for (let i = 0; i < 3; i++) await b.failure('late');
    await a.flush();
    expect((await b.view(['late']))[0]).toMatchObject({ state: 'open' });
  });
});

describe.skipIf(!process.env.TEST_REDIS_URL)('two gateway instances sharing Redis', () => {
  let or: MockProvider;
  let oa: MockProvider;
  let a: RunningGateway;
  let b: RunningGateway;
  beforeAll(async () => {
    or = await startMockProvider('openrouter');
    oa = await startMockProvider('openai');
    const prefix = `gwz-test:${Date.now()}:${Math.random().toString(36).slice(2)}:`;
    const dbA = await createTestDatabase('sqlite');
    const dbB = await createTestDatabase('sqlite');
    const env = (dir: string) => ({
      OPENROUTER_API_KEY: 'or',
      OPENROUTER_BASE_URL: or.url,
      OPENAI_API_KEY: 'oa',
      OPENAI_BASE_URL: oa.url,
      GATEWAYZ_CONFIG: writePriceConfig(dir),
      UPSTREAM_MAX_RETRIES: '0',
      BREAKER_FAILURE_THRESHOLD: '2',
      REDIS_URL: process.env.TEST_REDIS_URL!,
      ROUTING_REDIS_PREFIX: prefix,
    });
    a = await startGateway(dbA, env(dbA.dataDir));
    b = await startGateway(dbB, env(dbB.dataDir));
  });
  afterAll(async () => {
    for (const g of [a, b]) {
      await g?.close();
      await g?.db.drop();
    }
    await Promise.all([or, oa].map((m) => m?.close()));
  });

  it('a breaker opened by one instance sheds traffic on the other', async () => {
    expect(a.gw.routing.store).toBe('redis');
    or.setDefaultFault({ type: 'status', status: 503 });
    const ua = await a.createUser(1);
    for (let i = 0; i < 2; i++)
      expect((await chat(a, ua.apiKey, {})).headers.get('x-gatewayz-provider')).toBe('openai');
    const p = (await (await fetch(`${b.url}/models/providers`)).json()) as any;
    expect(p.data.find((x: any) => x.name === 'openrouter').circuit.state).toBe('open');
    const calls = or.calls.length;
    const ub = await b.createUser(1);
    const r = await chat(b, ub.apiKey, {});
    expect(r.headers.get('x-gatewayz-provider')).toBe('openai');
    expect(r.headers.get('x-gatewayz-attempts')).toBe('1');
    expect(or.calls.length).toBe(calls);
  });
});
