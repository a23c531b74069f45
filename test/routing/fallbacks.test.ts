import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, DATABASES } from '../helpers/db.js';
import { type RunningGateway, startGateway } from '../helpers/gateway.js';
import { expectedMicros, writePriceConfig } from '../helpers/prices.js';
import { type MockProvider, startMockProvider } from '../mocks/provider.js';
import { chat, moneyOf } from './helpers.js';

const STHENO = 'Sao10K/L3-8B-Stheno-v3.2';
// Stheno is made expensive so the hold visibly depends on whether it is a candidate.
const STHENO_PRICE = { prompt: 100, completion: 1000 };

describe.each(DATABASES)('fallback chains (%s)', (kind) => {
  let or: MockProvider;
  let fl: MockProvider;
  let g: RunningGateway;
  beforeAll(async () => {
    or = await startMockProvider('openrouter');
    fl = await startMockProvider('featherless');
    const db = await createTestDatabase(kind);
    g = await startGateway(db, {
      OPENROUTER_API_KEY: 'or',
      OPENROUTER_BASE_URL: or.url,
      FEATHERLESS_API_KEY: 'fl',
      FEATHERLESS_BASE_URL: fl.url,
      UPSTREAM_MAX_RETRIES: '0',
      UPSTREAM_FIRST_BYTE_TIMEOUT_MS: '5000',
      GATEWAYZ_CONFIG: writePriceConfig(db.dataDir, {
        prices: { featherless: { [STHENO]: STHENO_PRICE } },
        fallbacks: { 'anthropic/claude-3.5-sonnet': [STHENO] },
        providerTimeouts: { openrouter: { firstByteMs: 300 } },
      }),
    });
  });
  afterAll(async () => {
    await g?.close();
    await g?.db.drop();
    await Promise.all([or, fl].map((m) => m?.close()));
  });
  afterEach(() => {
    or.reset();
    fl.reset();
  });

  it('`models`: when the first model fails, the next model serves it; headers and the usage record name it', async () => {
    or.setDefaultFault({ type: 'status', status: 500 });
    const u = await g.createUser(10);
    const r = await chat(g, u.apiKey, { model: 'openai/gpt-4o-mini', models: [STHENO] });
    expect(r.status).toBe(200);
    expect(r.headers.get('x-gatewayz-provider')).toBe('featherless');
    expect(r.headers.get('x-gatewayz-model')).toBe(STHENO);
    expect(r.headers.get('x-gatewayz-attempts')).toBe('2');
    expect(r.json.gateway_usage).toMatchObject({ provider: 'featherless', model: STHENO, attempts: 2 });
    // `models` is the gateway's business, never the provider's
    expect(fl.calls.at(-1)!.body.models).toBeUndefined();
    expect(fl.calls.at(-1)!.body.model).toBe(STHENO);
    const m = await moneyOf(g, u.userId, r.requestId);
    expect(m.records).toHaveLength(1);
    expect(m.records[0]).toMatchObject({ provider: 'featherless', model: STHENO, status: 'ok' });
    const usage = fl.calls.at(-1)!.usage!;
    expect(m.charged).toBe(
      expectedMicros(
        usage.prompt_tokens,
        usage.completion_tokens,
        STHENO_PRICE.prompt,
        STHENO_PRICE.completion,
      ),
    );
    expect(m.held).toBe(0);
  });

  it('without `models` the same failure reaches the client', async () => {
    or.setDefaultFault({ type: 'status', status: 500 });
    const u = await g.createUser(10);
    const r = await chat(g, u.apiKey, { model: 'openai/gpt-4o-mini' });
    expect(r.status).toBe(502);
    expect(fl.calls).toHaveLength(0);
  });

  it('a configured chain (fallbacks in the config file) serves it without the caller asking', async () => {
    or.setDefaultFault({ type: 'reset' });
    const u = await g.createUser(10);
    const r = await chat(g, u.apiKey, { model: 'anthropic/claude-3.5-sonnet', max_tokens: 50 });
    expect(r.status).toBe(200);
    expect(r.headers.get('x-gatewayz-model')).toBe(STHENO);
    expect(r.headers.get('x-gatewayz-provider')).toBe('featherless');
  });

  it('the hold covers the most expensive candidate, fallback models included', async () => {
    // $0.05 covers gpt-4o-mini's worst case (16,384 tokens at $0.60/M) but not Stheno's (4,096 at $1,000/M)
    const u = await g.createUser(0.05);
    const alone = await chat(g, u.apiKey, { model: 'openai/gpt-4o-mini' });
    expect(alone.status).toBe(200);
    expect(alone.headers.get('x-gatewayz-max-tokens-capped')).toBeNull();
    const withFallback = await chat(g, u.apiKey, { model: 'openai/gpt-4o-mini', models: [STHENO] });
    expect(withFallback.status).toBe(200);
    const cap = Number(withFallback.headers.get('x-gatewayz-max-tokens-capped'));
    expect(cap).toBeGreaterThan(0);
    expect(cap).toBeLessThan(4096);
    expect(or.calls.at(-1)!.body.max_tokens).toBe(cap);
  });

  it('per-provider timeouts from the config file: OpenRouter gets 300 ms to first byte, then the chain moves on', async () => {
    or.setDefaultFault({ type: 'hang' });
    const u = await g.createUser(10);
    const r = await chat(g, u.apiKey, { model: 'openai/gpt-4o-mini', models: [STHENO] });
    expect(r.status).toBe(200);
    expect(r.headers.get('x-gatewayz-provider')).toBe('featherless');
    expect(r.ms).toBeLessThan(2500); // the global first-byte timeout is 5 s
    const pinned = await chat(g, u.apiKey, { model: 'openai/gpt-4o-mini' });
    expect(pinned.status).toBe(504);
    expect(pinned.json.error.type).toBe('timeout_error');
    const m = await moneyOf(g, u.userId, pinned.requestId);
    expect(m.charged).toBe(0);
    expect(m.held).toBe(0);
  });

  it('rejects a bad x-gatewayz-timeout-ms', async () => {
    const u = await g.createUser(1);
    const r = await chat(g, u.apiKey, {}, { 'x-gatewayz-timeout-ms': 'soon' });
    expect(r.status).toBe(400);
    expect(r.json.error.param).toBe('x-gatewayz-timeout-ms');
  });
});
