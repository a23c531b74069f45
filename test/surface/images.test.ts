import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, DATABASES } from '../helpers/db.js';
import { type RunningGateway, startGateway } from '../helpers/gateway.js';
import { writePriceConfig } from '../helpers/prices.js';
import { type MockProvider, startMockProvider } from '../mocks/provider.js';

// USD per image, by size; dall-e-3 also has a price for other sizes, gpt-image-1 only per size.
const PRICES = {
  openai: {
    'dall-e-3': { image: 0.04, image_sizes: { '1024x1024': 0.04, '1792x1024': 0.08 } },
    'gpt-image-1': { image_sizes: { '1024x1024': 0.011 } },
    'gpt-4o-mini': { prompt: 0.15, completion: 0.6 },
  },
  chutes: { 'FLUX.1-schnell': { image: 0.003 } },
};

describe.each(DATABASES)('images (%s)', (kind) => {
  let oa: MockProvider;
  let ch: MockProvider;
  let g: RunningGateway;

  beforeAll(async () => {
    oa = await startMockProvider('openai', { options: { apiKey: 'sk-oa' } });
    ch = await startMockProvider('chutes', { options: { apiKey: 'ch-key' } });
    const db = await createTestDatabase(kind);
    const config = writePriceConfig(db.dataDir, {
      prices: PRICES,
      // Image models the providers' /models do not list.
      models: { openai: [{ id: 'gpt-image-1' }], chutes: [{ id: 'FLUX.1-schnell' }] },
    });
    g = await startGateway(db, {
      OPENAI_API_KEY: 'sk-oa',
      OPENAI_BASE_URL: oa.url,
      CHUTES_API_KEY: 'ch-key',
      CHUTES_BASE_URL: ch.url,
      GATEWAYZ_CONFIG: config,
    });
  });
  afterAll(async () => {
    await g?.close();
    await g?.db.drop();
    await oa?.close();
    await ch?.close();
  });

  const balance = async (userId: string) => (await g.gw.billing.balance(userId))!.balance_micros;
  const imageCalls = (p: MockProvider) => p.calls.filter((c) => c.path.endsWith('/images/generations'));
  const post = (path: string, key: string, body: unknown) =>
    fetch(g.url + path, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });

  it('the openai client generates images; the balance moves by images × the size price', async () => {
    const u = await g.createUser(1);
    const client = new OpenAI({ apiKey: u.apiKey, baseURL: g.v1, maxRetries: 0 });
    oa.reset();
    const before = await balance(u.userId);
    const r = await client.images.generate({
      model: 'dall-e-3',
      prompt: 'a red fox',
      n: 2,
      size: '1792x1024',
    });
    expect(r.data).toHaveLength(2);
    expect(r.data![0]!.url).toMatch(/^https:\/\//);
    expect(imageCalls(oa)[0]!.body).toMatchObject({
      model: 'dall-e-3',
      n: 2,
      size: '1792x1024',
      prompt: 'a red fox',
    });
    expect(before - (await balance(u.userId))).toBe(2 * 80_000);
    expect((r as any).gateway_usage).toMatchObject({ images: 2, cost_micros: 160_000, cost_usd: 0.16 });

    const b64 = await client.images.generate({
      model: 'openai/dall-e-3',
      prompt: 'a blue fox',
      response_format: 'b64_json',
    });
    expect(b64.data![0]!.b64_json).toMatch(/^iVBOR/);
    expect(before - (await balance(u.userId))).toBe(160_000 + 40_000); // default size 1024x1024
  });

  it('POST /images/generate answers in the {success, data, gateway_usage} shape', async () => {
    const u = await g.createUser(1);
    const before = await balance(u.userId);
    const res = await post('/images/generate', u.apiKey, {
      prompt: 'A beautiful sunset over mountains',
      model: 'dall-e-3',
    });
    expect(res.status).toBe(200);
    const j = (await res.json()) as any;
    expect(j.success).toBe(true);
    expect(j.data).toHaveLength(1);
    expect(j.data[0]).toMatchObject({ revised_prompt: 'A beautiful sunset over mountains' });
    expect(j.data[0].url).toMatch(/^https:\/\//);
    expect(j.gateway_usage).toMatchObject({ images: 1, cost_micros: 40_000 });
    expect(before - (await balance(u.userId))).toBe(40_000); // never $100 per image
  });

  it('other OpenAI-compatible image providers (Chutes) and per-size-only prices', async () => {
    const u = await g.createUser(1);
    const client = new OpenAI({ apiKey: u.apiKey, baseURL: g.v1, maxRetries: 0 });
    ch.reset();
    const before = await balance(u.userId);
    const r = await client.images.generate({ model: 'FLUX.1-schnell', prompt: 'a lighthouse', n: 3 });
    expect(r.data).toHaveLength(3);
    expect(imageCalls(ch)).toHaveLength(1);
    expect(before - (await balance(u.userId))).toBe(3 * 3_000);
    const gi = await client.images.generate({ model: 'gpt-image-1', prompt: 'a boat', size: '1024x1024' });
    expect(gi.data).toHaveLength(1);
    expect(before - (await balance(u.userId))).toBe(9_000 + 11_000);
  });

  it('held for n images, settled for the images actually returned', async () => {
    const u = await g.createUser(1);
    oa.reset();
    // The upstream returns one image although three were asked for.
    oa.faults.push({
      type: 'status',
      status: 200,
      body: { created: 1, data: [{ url: 'https://img.example/1.png' }] },
    });
    const before = await balance(u.userId);
    const res = await post('/v1/images/generations', u.apiKey, { model: 'dall-e-3', prompt: 'x', n: 3 });
    expect(res.status).toBe(200);
    const j = (await res.json()) as any;
    expect(j.data).toHaveLength(1);
    expect(before - (await balance(u.userId))).toBe(40_000);
    const b = (await g.gw.billing.balance(u.userId))!;
    expect(b.held_micros).toBe(0);
  });

  it('refuses before the upstream call when the balance cannot pay for n images (402, nothing charged)', async () => {
    const u = await g.createUser(0.1);
    oa.reset();
    const res = await post('/v1/images/generations', u.apiKey, {
      model: 'dall-e-3',
      prompt: 'x',
      n: 2,
      size: '1792x1024',
    });
    expect(res.status).toBe(402);
    expect(((await res.json()) as any).error.type).toBe('insufficient_credits');
    expect(imageCalls(oa)).toHaveLength(0);
    expect(await balance(u.userId)).toBe(100_000);
  });

  it('bad input and unpriced models → OpenAI error shape, nothing sent, nothing charged', async () => {
    const u = await g.createUser(1);
    const before = await balance(u.userId);
    oa.reset();
    ch.reset();
    const cases: Array<[string, unknown, number, string | null]> = [
      ['/v1/images/generations', { model: 'dall-e-3' }, 400, 'prompt'],
      ['/v1/images/generations', { prompt: 'x' }, 400, 'model'],
      ['/v1/images/generations', { model: 'dall-e-3', prompt: '' }, 400, 'prompt'],
      ['/v1/images/generations', { model: 'dall-e-3', prompt: 'x', n: 11 }, 400, 'n'],
      ['/v1/images/generations', { model: 'dall-e-3', prompt: 'x', n: 0 }, 400, 'n'],
      ['/v1/images/generations', { model: 'dall-e-3', prompt: 'x', size: 'huge' }, 400, 'size'],
      [
        '/v1/images/generations',
        { model: 'dall-e-3', prompt: 'x', response_format: 'png' },
        400,
        'response_format',
      ],
      ['/images/generate', { model: 'dall-e-3', prompt: 7 }, 400, 'prompt'],
      // gpt-image-1 has no price for this size, gpt-4o-mini no per-image price: refused, never a default price.
      ['/v1/images/generations', { model: 'gpt-image-1', prompt: 'x', size: '512x512' }, 400, 'size'],
      ['/v1/images/generations', { model: 'openai/gpt-4o-mini', prompt: 'x' }, 400, 'model'],
      ['/v1/images/generations', { model: 'dall-e-2', prompt: 'x' }, 404, 'model'],
    ];
    for (const [path, body, status, param] of cases) {
      const res = await post(path, u.apiKey, body);
      expect(res.status, `${path} ${JSON.stringify(body)}`).toBe(status);
      const j = (await res.json()) as any;
      expect(j.error.param, JSON.stringify(body)).toBe(param);
      expect(typeof j.error.message).toBe('string');
      expect(typeof j.error.type).toBe('string');
    }
    const client = new OpenAI({ apiKey: u.apiKey, baseURL: g.v1, maxRetries: 0 });
    await expect(client.images.generate({ model: 'dall-e-3', prompt: 'x', n: 20 })).rejects.toMatchObject({
      status: 400,
    });
    expect(imageCalls(oa)).toHaveLength(0);
    expect(imageCalls(ch)).toHaveLength(0);
    expect(await balance(u.userId)).toBe(before);
  });

  it('an upstream failure costs nothing', async () => {
    const u = await g.createUser(1);
    oa.reset();
    oa.faults.push({ type: 'status', status: 400 });
    const before = await balance(u.userId);
    const res = await post('/v1/images/generations', u.apiKey, { model: 'dall-e-3', prompt: 'x' });
    expect(res.status).toBe(400);
    expect(((await res.json()) as any).error).toBeTruthy();
    expect(await balance(u.userId)).toBe(before);
  });
});
