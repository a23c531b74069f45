// Every fault the mock provider can inject, end to end over real HTTP: what the client sees,
// whether a fallback served it, and that the charge equals what was delivered (0 for failures).
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, DATABASES } from '../helpers/db.js';
import { type RunningGateway, startGateway } from '../helpers/gateway.js';
import { writePriceConfig } from '../helpers/prices.js';
import { type Fault, type MockProvider, startMockProvider } from '../mocks/provider.js';
import {
  type ChatResult,
  chat,
  expectCharged,
  expectChargedDelivered,
  expectNoCharge,
  sseEvents,
  streamText,
} from './helpers.js';

const INITIAL = 1_000_000; // $1 per test user, in micro-dollars
const PINNED = { provider: { order: ['openrouter'], allow_fallbacks: false } };
const FALLBACK = { provider: { order: ['openrouter', 'openai'] } };

describe.each(DATABASES)('faults (%s)', (kind) => {
  let or: MockProvider; // primary: OpenRouter
  let oa: MockProvider; // fallback: OpenAI (same model id, price from the config file)
  let dead: MockProvider; // Chutes, closed after the catalog sync: connection refused
  let g: RunningGateway;

  beforeAll(async () => {
    or = await startMockProvider('openrouter');
    oa = await startMockProvider('openai');
    dead = await startMockProvider('chutes', {
      models: [{ id: 'openai/gpt-4o-mini', pricing: { prompt: '0.00000015', completion: '0.0000006' } }],
    });
    const db = await createTestDatabase(kind);
    g = await startGateway(db, {
      OPENROUTER_API_KEY: 'or',
      OPENROUTER_BASE_URL: or.url,
      OPENAI_API_KEY: 'oa',
      OPENAI_BASE_URL: oa.url,
      CHUTES_API_KEY: 'ch',
      CHUTES_BASE_URL: dead.url,
      PROVIDER_ORDER: 'openrouter,openai,chutes',
      GATEWAYZ_CONFIG: writePriceConfig(db.dataDir),
      UPSTREAM_MAX_RETRIES: '1',
      UPSTREAM_RETRY_BASE_MS: '5',
      UPSTREAM_RETRY_MAX_DELAY_MS: '1500',
      UPSTREAM_FIRST_BYTE_TIMEOUT_MS: '400',
      UPSTREAM_IDLE_TIMEOUT_MS: '400',
      // these tests look at single faults; the breaker has its own test
      BREAKER_FAILURE_THRESHOLD: '100000',
      BREAKER_MIN_REQUESTS: '100000',
    });
    await dead.close();
  });
  afterAll(async () => {
    await g?.close();
    await g?.db.drop();
    await Promise.all([or, oa].map((m) => m?.close()));
  });
  afterEach(() => {
    or.reset();
    oa.reset();
  });

  const chatCalls = (m: MockProvider) => m.calls.filter((c) => c.path.endsWith('/chat/completions'));
  const user = () => g.createUser(INITIAL / 1e6);
  const expectOpenAiError = (r: ChatResult, status: number, type: string, code?: string) => {
    expect(r.status).toBe(status);
    expect(r.json.error).toMatchObject({ type, ...(code ? { code } : {}) });
    expect(typeof r.json.error.message).toBe('string');
    expect(r.requestId).not.toBe('');
  };
  const servedBy = (r: ChatResult, provider: string, attempts: number) => {
    expect(r.status).toBe(200);
    expect(r.headers.get('x-gatewayz-provider')).toBe(provider);
    expect(r.headers.get('x-gatewayz-model')).toBe('openai/gpt-4o-mini');
    expect(r.headers.get('x-gatewayz-attempts')).toBe(String(attempts));
  };

  describe.each([500, 502, 503])('HTTP %i', (status) => {
    it('pinned: retried once, then the client gets 502 in OpenAI shape and pays nothing', async () => {
      or.setDefaultFault({ type: 'status', status });
      const u = await user();
      const r = await chat(g, u.apiKey, PINNED);
      expectOpenAiError(r, 502, 'upstream_error', 'upstream_error');
      expect(chatCalls(or)).toHaveLength(2);
      const m = await expectNoCharge(g, u, r, INITIAL);
      expect(m.records[0]?.status).toBe('error_502');
    });
    it('with a fallback: OpenAI serves it, charged at what OpenAI delivered', async () => {
      or.setDefaultFault({ type: 'status', status });
      const u = await user();
      const r = await chat(g, u.apiKey, FALLBACK);
      servedBy(r, 'openai', 3);
      expect(r.json.gateway_usage.provider).toBe('openai');
      expect(chatCalls(or)).toHaveLength(2);
      expect(chatCalls(oa)).toHaveLength(1);
      const m = await expectCharged(g, u, r, INITIAL, chatCalls(oa)[0]!.usage!);
      expect(m.records[0]).toMatchObject({ provider: 'openai', model: 'openai/gpt-4o-mini', status: 'ok' });
    });
  });

  it('HTTP 429 with Retry-After within the cap: waited for, then the same provider serves it', async () => {
    or.faults.push({ type: 'status', status: 429, retryAfter: '1' });
    const u = await user();
    const r = await chat(g, u.apiKey, FALLBACK);
    servedBy(r, 'openrouter', 2);
    expect(r.ms).toBeGreaterThanOrEqual(950);
    expect(chatCalls(oa)).toHaveLength(0);
    await expectCharged(g, u, r, INITIAL, chatCalls(or)[1]!.usage!);
  });

  it('HTTP 429 with Retry-After beyond the cap: pinned → 429 with Retry-After, no retry, no charge', async () => {
    or.setDefaultFault({ type: 'status', status: 429, retryAfter: '30' });
    const u = await user();
    const r = await chat(g, u.apiKey, PINNED);
    expectOpenAiError(r, 429, 'rate_limit_error', 'upstream_rate_limited');
    expect(r.headers.get('retry-after')).toBe('30');
    expect(chatCalls(or)).toHaveLength(1);
    expect(r.ms).toBeLessThan(1000);
    await expectNoCharge(g, u, r, INITIAL);
  });

  it('HTTP 429 with Retry-After beyond the cap: with a fallback OpenAI serves it at once', async () => {
    or.setDefaultFault({ type: 'status', status: 429, retryAfter: '30' });
    const u = await user();
    const r = await chat(g, u.apiKey, FALLBACK);
    servedBy(r, 'openai', 2);
    expect(chatCalls(or)).toHaveLength(1);
    await expectCharged(g, u, r, INITIAL, chatCalls(oa)[0]!.usage!);
  });

  it('HTTP 429 without Retry-After: backed off and retried; pinned → 429, no charge', async () => {
    or.setDefaultFault({ type: 'status', status: 429 });
    const u = await user();
    const r = await chat(g, u.apiKey, PINNED);
    expectOpenAiError(r, 429, 'rate_limit_error');
    expect(chatCalls(or)).toHaveLength(2);
    await expectNoCharge(g, u, r, INITIAL);
  });

  it('HTTP 429 without Retry-After: with a fallback OpenAI serves it', async () => {
    or.setDefaultFault({ type: 'status', status: 429 });
    const u = await user();
    const r = await chat(g, u.apiKey, FALLBACK);
    servedBy(r, 'openai', 3);
    await expectCharged(g, u, r, INITIAL, chatCalls(oa)[0]!.usage!);
  });

  it('a caller-caused 400 is neither retried nor sent to a fallback', async () => {
    or.setDefaultFault({ type: 'status', status: 400 });
    const u = await user();
    const r = await chat(g, u.apiKey, FALLBACK);
    expect(r.status).toBe(400);
    expect(r.json.error.type).toBe('invalid_request_error');
    expect(chatCalls(or)).toHaveLength(1);
    expect(chatCalls(oa)).toHaveLength(0);
    await expectNoCharge(g, u, r, INITIAL);
  });

  it('connection refused: pinned → 502 upstream_unreachable, no charge', async () => {
    const u = await user();
    const r = await chat(g, u.apiKey, { provider: { order: ['chutes'], allow_fallbacks: false } });
    expectOpenAiError(r, 502, 'upstream_error', 'upstream_unreachable');
    expect(r.json.error.message).toMatch(/ECONNREFUSED/);
    await expectNoCharge(g, u, r, INITIAL);
  });

  it('connection refused: with a fallback OpenAI serves it', async () => {
    const u = await user();
    const r = await chat(g, u.apiKey, { provider: { order: ['chutes', 'openai'] } });
    servedBy(r, 'openai', 3);
    await expectCharged(g, u, r, INITIAL, chatCalls(oa)[0]!.usage!);
  });

  it.each([false, true])('connection reset (stream: %s): pinned → 502, no charge', async (stream) => {
    or.setDefaultFault({ type: 'reset' });
    const u = await user();
    const r = await chat(g, u.apiKey, { ...PINNED, stream });
    expectOpenAiError(r, 502, 'upstream_error', 'upstream_unreachable');
    expect(chatCalls(or)).toHaveLength(2);
    await expectNoCharge(g, u, r, INITIAL);
  });

  it('connection reset: with a fallback OpenAI serves it', async () => {
    or.setDefaultFault({ type: 'reset' });
    const u = await user();
    const r = await chat(g, u.apiKey, FALLBACK);
    servedBy(r, 'openai', 3);
    await expectCharged(g, u, r, INITIAL, chatCalls(oa)[0]!.usage!);
  });

  it.each([false, true])(
    'hang before the first byte (stream: %s): pinned → 504 after the first-byte timeout, hold released',
    async (stream) => {
      or.setDefaultFault({ type: 'hang' });
      const u = await user();
      const r = await chat(g, u.apiKey, { ...PINNED, stream });
      expectOpenAiError(r, 504, 'timeout_error', 'upstream_timeout');
      expect(r.ms).toBeGreaterThanOrEqual(800); // two attempts of 400 ms
      expect(r.ms).toBeLessThan(3000);
      expect(chatCalls(or)).toHaveLength(2);
      await expectNoCharge(g, u, r, INITIAL);
    },
  );

  it('hang before the first byte: with a fallback OpenAI serves it', async () => {
    or.setDefaultFault({ type: 'hang' });
    const u = await user();
    const r = await chat(g, u.apiKey, FALLBACK);
    servedBy(r, 'openai', 3);
    await expectCharged(g, u, r, INITIAL, chatCalls(oa)[0]!.usage!);
  });

  it('a total timeout (x-gatewayz-timeout-ms) ends a hung request with 504 and releases the hold', async () => {
    or.setDefaultFault({ type: 'hang' });
    const u = await user();
    const r = await chat(g, u.apiKey, FALLBACK, { 'x-gatewayz-timeout-ms': '250' });
    expectOpenAiError(r, 504, 'timeout_error');
    expect(r.ms).toBeLessThan(1000);
    expect(chatCalls(oa)).toHaveLength(0);
    await expectNoCharge(g, u, r, INITIAL);
  });

  describe.each(['stall', 'break'] as const)('a stream that %ss mid-way', (type) => {
    it('the client gets what was generated, then an SSE error event; charged exactly what was delivered; no fallback', async () => {
      or.setDefaultFault({ type, afterChunks: 2 });
      const u = await user();
      const r = await chat(g, u.apiKey, { ...FALLBACK, stream: true });
      servedBy(r, 'openrouter', 1);
      expect(r.headers.get('content-type')).toMatch(/text\/event-stream/);
      const events = sseEvents(r.text);
      const last = events.at(-1);
      expect(last).not.toBe('[DONE]');
      expect(last.error).toMatchObject(
        type === 'stall'
          ? { type: 'timeout_error', code: 'upstream_timeout' }
          : { type: 'upstream_error', code: 'upstream_stream_error' },
      );
      expect(streamText(r.text)).toBe('Hello from mock w4 w5 w6 ');
      expect(chatCalls(oa)).toHaveLength(0); // bytes had gone out: never retried
      expect(chatCalls(or)).toHaveLength(1);
      const m = await expectChargedDelivered(g, u, r, INITIAL, chatCalls(or)[0]!.usage!);
      expect(m.records[0]!.status).toBe('upstream_error');
    });
  });

  it.each(['stall', 'break'] as const)(
    'a non-stream body that %ss half-way: retried, then OpenAI serves it',
    async (type) => {
      or.setDefaultFault({ type, afterChunks: 0 });
      const u = await user();
      const r = await chat(g, u.apiKey, FALLBACK);
      servedBy(r, 'openai', 3);
      await expectCharged(g, u, r, INITIAL, chatCalls(oa)[0]!.usage!);
    },
  );

  it('malformed SSE: the broken event is dropped, the stream completes and is charged the reported usage', async () => {
    or.faults.push({ type: 'malformed' });
    const u = await user();
    const r = await chat(g, u.apiKey, { ...FALLBACK, stream: true });
    servedBy(r, 'openrouter', 1);
    const events = sseEvents(r.text); // every event the client got parses
    expect(events.at(-1)).toBe('[DONE]');
    expect(events.some((e) => e !== '[DONE]' && e.error)).toBe(false);
    expect(streamText(r.text)).toBe('Hello from mock w4 w5 w6 w7 w8 w9 w10 w11 w12 ');
    expect(chatCalls(or)[0]!.usageReported).toBe(true);
    await expectCharged(g, u, r, INITIAL, chatCalls(or)[0]!.usage!);
  });

  it('malformed JSON body: pinned → 502 upstream_bad_response after a retry, no charge', async () => {
    or.setDefaultFault({ type: 'malformed' });
    const u = await user();
    const r = await chat(g, u.apiKey, PINNED);
    expectOpenAiError(r, 502, 'upstream_error', 'upstream_bad_response');
    expect(chatCalls(or)).toHaveLength(2);
    await expectNoCharge(g, u, r, INITIAL);
  });

  it('malformed JSON body: with a fallback OpenAI serves it', async () => {
    or.setDefaultFault({ type: 'malformed' });
    const u = await user();
    const r = await chat(g, u.apiKey, FALLBACK);
    servedBy(r, 'openai', 3);
    await expectCharged(g, u, r, INITIAL, chatCalls(oa)[0]!.usage!);
  });

  it('oversized stream event (> 4 MiB) before the first byte: pinned → 502, no charge', async () => {
    or.setDefaultFault({ type: 'oversized', bytes: 5 * 1024 * 1024 });
    const u = await user();
    const r = await chat(g, u.apiKey, { ...PINNED, stream: true });
    expectOpenAiError(r, 502, 'upstream_error', 'upstream_body_too_large');
    await expectNoCharge(g, u, r, INITIAL);
  });

  it('oversized stream event: with a fallback OpenAI serves it as a stream', async () => {
    or.setDefaultFault({ type: 'oversized', bytes: 5 * 1024 * 1024 });
    const u = await user();
    const r = await chat(g, u.apiKey, { ...FALLBACK, stream: true });
    servedBy(r, 'openai', 3);
    expect(sseEvents(r.text).at(-1)).toBe('[DONE]');
    await expectCharged(g, u, r, INITIAL, chatCalls(oa)[0]!.usage!);
  });

  it('oversized JSON body (> 64 MiB): dropped, retried, and the retry serves it', async () => {
    or.faults.push({ type: 'oversized', bytes: 64 * 1024 * 1024 + 1024 });
    const u = await user();
    const r = await chat(g, u.apiKey, PINNED);
    servedBy(r, 'openrouter', 2);
    expect(r.text.length).toBeLessThan(10_000);
    await expectCharged(g, u, r, INITIAL, chatCalls(or)[1]!.usage!);
  });

  it('oversized JSON body every time: pinned → 502 upstream_body_too_large, no charge', async () => {
    or.setDefaultFault({ type: 'oversized', bytes: 64 * 1024 * 1024 + 1024 });
    const u = await user();
    const r = await chat(g, u.apiKey, PINNED);
    expectOpenAiError(r, 502, 'upstream_error', 'upstream_body_too_large');
    await expectNoCharge(g, u, r, INITIAL);
  });

  it('no usage in a stream: served and charged by the tokenizer count of what was delivered', async () => {
    or.faults.push({ type: 'no-usage' } as Fault);
    const u = await user();
    const r = await chat(g, u.apiKey, { ...PINNED, stream: true });
    servedBy(r, 'openrouter', 1);
    expect(sseEvents(r.text).at(-1)).toBe('[DONE]');
    const m = await moneyCheck(r, u);
    expect(m).toBeGreaterThan(0);
  });

  async function moneyCheck(r: ChatResult, u: { userId: string }) {
    const { moneyOf } = await import('./helpers.js');
    const m = await moneyOf(g, u.userId, r.requestId);
    expect(m.balance).toBe(INITIAL - m.charged);
    expect(m.held).toBe(0);
    expect(m.ledgerSum).toBe(m.balance);
    return m.charged;
  }
});
