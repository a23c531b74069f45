import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, DATABASES } from '../helpers/db.js';
import { type RunningGateway, startGateway } from '../helpers/gateway.js';
import { expectedMicros, writePriceConfig } from '../helpers/prices.js';
import { type MockProvider, startMockProvider } from '../mocks/provider.js';

async function waitFor(cond: () => Promise<boolean>, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await cond()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error('condition not met in time');
}

describe.each(DATABASES)('streams (%s)', (kind) => {
  let or: MockProvider;
  let fl: MockProvider;
  let g: RunningGateway;

  beforeAll(async () => {
    or = await startMockProvider('openrouter');
    fl = await startMockProvider('featherless');
    const db = await createTestDatabase(kind);
    g = await startGateway(db, {
      OPENROUTER_API_KEY: 'k',
      OPENROUTER_BASE_URL: or.url,
      FEATHERLESS_API_KEY: 'f',
      FEATHERLESS_BASE_URL: fl.url,
      GATEWAYZ_CONFIG: writePriceConfig(db.dataDir),
    });
  });
  afterAll(async () => {
    await g?.close();
    await g?.db.drop();
    await or?.close();
    await fl?.close();
  });

  const post = (key: string, body: unknown, signal?: AbortSignal) =>
    fetch(`${g.v1}/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
      signal,
    });

  it('relays SSE, hides the usage chunk when not asked, and books the charge before [DONE]', async () => {
    const u = await g.createUser(1);
    or.reset();
    const res = await post(u.apiKey, {
      model: 'openai/gpt-4o-mini',
      stream: true,
      messages: [{ role: 'user', content: 'a b c' }],
    });
    expect(res.headers.get('content-type')).toMatch(/text\/event-stream/);
    expect(res.headers.get('x-request-id')).toBeTruthy();
    const text = await res.text();
    expect(text).toContain(': OPENROUTER PROCESSING'); // keep-alive comments pass through
    expect(text.trim().endsWith('data: [DONE]')).toBe(true);
    expect(text).not.toContain('"usage":{');
    const usage = or.calls.at(-1)!.usage!;
    // the charge is settled by the time the client saw [DONE]
    const b = (await g.gw.billing.balance(u.userId))!;
    expect(1_000_000 - b.balance_micros).toBe(
      expectedMicros(usage.prompt_tokens, usage.completion_tokens, 0.15, 0.6),
    );
    expect(b.held_micros).toBe(0);
  });

  it('reads usage from a chunk whose choices are not empty (Featherless) and passes it when asked', async () => {
    const u = await g.createUser(1);
    fl.reset();
    const res = await post(u.apiKey, {
      model: 'Sao10K/L3-8B-Stheno-v3.2',
      stream: true,
      stream_options: { include_usage: true },
      messages: [{ role: 'user', content: 'one two three' }],
    });
    const text = await res.text();
    const usage = fl.calls.at(-1)!.usage!;
    expect(text).toContain(`"prompt_tokens":${usage.prompt_tokens}`);
    const b = (await g.gw.billing.balance(u.userId))!;
    expect(1_000_000 - b.balance_micros).toBe(
      expectedMicros(usage.prompt_tokens, usage.completion_tokens, 0.1, 0.2),
    );

    // without include_usage the usage is removed from that content chunk, the content stays
    const res2 = await post(u.apiKey, {
      model: 'Sao10K/L3-8B-Stheno-v3.2',
      stream: true,
      messages: [{ role: 'user', content: 'x' }],
    });
    const t2 = await res2.text();
    expect(t2).not.toContain('"prompt_tokens"');
    expect(t2).toContain('finish_reason":"stop"');
  });

  it('charges what was generated when the client disconnects mid-stream', async () => {
    const u = await g.createUser(1);
    or.options.chunks = 50;
    or.options.chunkIntervalMs = 20;
    const ctl = new AbortController();
    const res = await post(
      u.apiKey,
      {
        model: 'openai/gpt-4o-mini',
        stream: true,
        messages: [{ role: 'user', content: 'tell a long story' }],
      },
      ctl.signal,
    );
    const reader = res.body!.getReader();
    // Until the generated text (not a chunk's random id) has reached its seventh word.
    let got = '';
    let content = '';
    while (!content.includes('w7')) {
      got += new TextDecoder().decode((await reader.read()).value);
      const events = got.split('\n\n');
      got = events.pop()!;
      for (const e of events) {
        if (!e.startsWith('data: {')) continue;
        content += JSON.parse(e.slice(6)).choices?.[0]?.delta?.content ?? '';
      }
    }
    ctl.abort();
    or.options.chunks = 4;
    or.options.chunkIntervalMs = 0;
    await waitFor(async () => (await g.gw.billing.balance(u.userId))!.balance_micros < 1_000_000);
    const b = (await g.gw.billing.balance(u.userId))!;
    await waitFor(async () => (await g.gw.billing.balance(u.userId))!.held_micros === 0);
    expect(b.balance_micros).toBeLessThan(1_000_000);
    const rec = await g.gw.db.db
      .selectFrom('usage_records')
      .selectAll()
      .where('user_id', '=', u.userId)
      .executeTakeFirstOrThrow();
    expect(rec.status).toBe('client_abort');
    expect(Number(rec.completion_tokens), JSON.stringify(rec)).toBeGreaterThan(0);
    expect(Number(rec.completion_tokens)).toBeLessThan(150); // far less than the full 150-word story
    expect(await g.gw.billing.ledgerSum(u.userId)).toBe(
      (await g.gw.billing.balance(u.userId))!.balance_micros,
    );
  });

  it('counts tokens itself when the upstream reports no usage', async () => {
    const u = await g.createUser(1);
    or.faults.push({ type: 'no-usage' });
    const res = await post(u.apiKey, {
      model: 'openai/gpt-4o-mini',
      stream: true,
      messages: [{ role: 'user', content: 'hello there' }],
    });
    expect(await res.text()).toContain('[DONE]');
    const rec = await g.gw.db.db
      .selectFrom('usage_records')
      .selectAll()
      .where('user_id', '=', u.userId)
      .executeTakeFirstOrThrow();
    expect(Number(rec.prompt_tokens)).toBeGreaterThan(0);
    expect(Number(rec.completion_tokens)).toBeGreaterThan(0);
    expect(Number(rec.cost_micros)).toBeGreaterThan(0);
  });
});
