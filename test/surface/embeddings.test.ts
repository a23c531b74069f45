import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, DATABASES } from '../helpers/db.js';
import { type RunningGateway, startGateway } from '../helpers/gateway.js';
import { expectedMicros, writePriceConfig } from '../helpers/prices.js';
import { embeddingFor } from '../mocks/openai-extras.js';
import { type MockProvider, startMockProvider } from '../mocks/provider.js';

const MODEL = 'openai/text-embedding-3-small';
const PRICE_PER_M = 130; // USD per million input tokens (set high so small requests cost whole micro-dollars)

describe.each(DATABASES)('embeddings (%s)', (kind) => {
  let oa: MockProvider;
  let g: RunningGateway;

  beforeAll(async () => {
    oa = await startMockProvider('openai', { options: { apiKey: 'sk-oa' } });
    const db = await createTestDatabase(kind);
    const config = writePriceConfig(db.dataDir, {
      prices: { openai: { 'text-embedding-3-small': { prompt: PRICE_PER_M, completion: 0 } } },
    });
    g = await startGateway(db, {
      OPENAI_API_KEY: 'sk-oa',
      OPENAI_BASE_URL: oa.url,
      GATEWAYZ_CONFIG: config,
      LOG_LEVEL: 'error',
    });
  });
  afterAll(async () => {
    await g?.close();
    await g?.db.drop();
    await oa?.close();
  });

  const balance = async (userId: string) => (await g.gw.billing.balance(userId))!.balance_micros;
  const embeddingCalls = () => oa.calls.filter((c) => c.path.endsWith('/embeddings'));

  it('the openai client embeds through the gateway (base64 passed through) and pays per input token', async () => {
    const u = await g.createUser(1);
    const client = new OpenAI({ apiKey: u.apiKey, baseURL: g.v1, maxRetries: 0 });
    oa.reset();
    const before = await balance(u.userId);
    const r = await client.embeddings.create({ model: MODEL, input: ['hello world', 'three more words'] });
    // The client asks for base64 by default and decodes it: the vectors must survive the trip exactly.
    expect(embeddingCalls()[0]!.body.encoding_format).toBe('base64');
    expect(embeddingCalls()[0]!.body.model).toBe('text-embedding-3-small');
    expect(r.data.map((d) => d.embedding)).toEqual([
      embeddingFor('hello world'),
      embeddingFor('three more words'),
    ]);
    expect(r.usage.prompt_tokens).toBe(5);
    const cost = expectedMicros(5, 0, PRICE_PER_M, 0);
    expect(cost).toBe(650);
    expect(before - (await balance(u.userId))).toBe(cost);
    expect((r as any).gateway_usage.cost_micros).toBe(cost);
  });

  it('float encoding and token-id input pass through; the charge follows the upstream count', async () => {
    const u = await g.createUser(1);
    const client = new OpenAI({ apiKey: u.apiKey, baseURL: g.v1, maxRetries: 0 });
    oa.reset();
    const before = await balance(u.userId);
    const r = await client.embeddings.create({ model: MODEL, input: 'just one', encoding_format: 'float' });
    expect(embeddingCalls()[0]!.body.encoding_format).toBe('float');
    expect(r.data[0]!.embedding).toEqual(embeddingFor('just one'));
    const ids = await client.embeddings.create({ model: MODEL, input: [[1, 2, 3, 4, 5, 6, 7]] });
    expect(ids.usage.prompt_tokens).toBe(7);
    expect(before - (await balance(u.userId))).toBe(
      expectedMicros(2, 0, PRICE_PER_M, 0) + expectedMicros(7, 0, PRICE_PER_M, 0),
    );
  });

  it('an upstream that reports no usage is billed by our own count, not for free', async () => {
    const u = await g.createUser(1);
    const client = new OpenAI({ apiKey: u.apiKey, baseURL: g.v1, maxRetries: 0 });
    oa.reset();
    oa.faults.push({ type: 'no-usage' });
    const before = await balance(u.userId);
    await client.embeddings.create({ model: MODEL, input: 'counted by the gateway itself' });
    expect(embeddingCalls()[0]!.usageReported).toBe(false);
    expect(before - (await balance(u.userId))).toBeGreaterThan(0);
  });

  it('bad input → 400 in OpenAI shape, nothing sent upstream, nothing charged', async () => {
    const u = await g.createUser(1);
    const before = await balance(u.userId);
    oa.reset();
    const post = (body: unknown) =>
      fetch(`${g.v1}/embeddings`, {
        method: 'POST',
        headers: { authorization: `Bearer ${u.apiKey}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
    const cases: Array<[unknown, string]> = [
      [{ model: MODEL }, 'input'],
      [{ input: 'x' }, 'model'],
      [{ model: MODEL, input: [] }, 'input'],
      [{ model: MODEL, input: '' }, 'input'],
      [{ model: MODEL, input: [1.5] }, 'input'],
      [{ model: MODEL, input: 'x', encoding_format: 'hex' }, 'encoding_format'],
      [{ model: MODEL, input: 'x', dimensions: 0 }, 'dimensions'],
    ];
    for (const [body, param] of cases) {
      const res = await post(body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      const j = (await res.json()) as any;
      expect(j.error).toMatchObject({ type: 'invalid_request_error', param });
      expect(typeof j.error.message).toBe('string');
    }
    const unknown = await post({ model: 'openai/no-such-embedder', input: 'x' });
    expect(unknown.status).toBe(404);
    expect(((await unknown.json()) as any).error.code).toBe('model_not_found');
    // The openai client surfaces the same error as its typed exception.
    const client = new OpenAI({ apiKey: u.apiKey, baseURL: g.v1, maxRetries: 0 });
    await expect(client.embeddings.create({ model: MODEL, input: [] })).rejects.toMatchObject({
      status: 400,
    });
    expect(embeddingCalls()).toHaveLength(0);
    expect(await balance(u.userId)).toBe(before);
  });

  it('an upstream refusal is relayed and costs nothing', async () => {
    const u = await g.createUser(1);
    const client = new OpenAI({ apiKey: u.apiKey, baseURL: g.v1, maxRetries: 0 });
    oa.reset();
    oa.faults.push({ type: 'status', status: 400 });
    const before = await balance(u.userId);
    await expect(client.embeddings.create({ model: MODEL, input: 'x' })).rejects.toMatchObject({
      status: 400,
    });
    expect(await balance(u.userId)).toBe(before);
  });
});
