import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, DATABASES } from '../helpers/db.js';
import { type RunningGateway, startGateway } from '../helpers/gateway.js';
import { type MockProvider, startMockProvider } from '../mocks/provider.js';
import { sample } from './prom.js';

const TOKEN = 'metrics-token-0123456789';

interface Collected {
  spans: any[];
  requests: number;
}

async function startCollector(): Promise<{ url: string; got: Collected; server: Server }> {
  const got: Collected = { spans: [], requests: 0 };
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      got.requests++;
      if (req.url === '/v1/traces' && req.headers['content-type'] === 'application/json') {
        const j = JSON.parse(body);
        for (const rs of j.resourceSpans)
          for (const ss of rs.scopeSpans)
            for (const s of ss.spans) got.spans.push({ ...s, resource: rs.resource });
        res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      } else res.writeHead(400).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, got, server };
}

describe.each(DATABASES)('metrics and tracing (%s)', (kind) => {
  let or: MockProvider;
  let g: RunningGateway;
  let collector: Awaited<ReturnType<typeof startCollector>>;
  beforeAll(async () => {
    or = await startMockProvider('openrouter');
    collector = await startCollector();
    const db = await createTestDatabase(kind);
    g = await startGateway(db, {
      OPENROUTER_API_KEY: 'or-key',
      OPENROUTER_BASE_URL: or.url,
      METRICS_TOKEN: TOKEN,
      OTEL_EXPORTER_OTLP_ENDPOINT: collector.url,
    });
  });
  afterAll(async () => {
    await g?.close();
    await g?.db.drop();
    await or?.close();
    collector?.server.close();
  });

  const scrape = async (token: string | null = TOKEN) =>
    fetch(`${g.url}/metrics`, { headers: token ? { authorization: `Bearer ${token}` } : {} });

  it('GET /metrics needs the token when METRICS_TOKEN is set', async () => {
    expect((await scrape(null)).status).toBe(401);
    expect((await scrape('wrong-token-0123456789')).status).toBe(401);
    const ok = await scrape();
    expect(ok.status).toBe(200);
    expect(ok.headers.get('content-type')).toContain('text/plain');
  });

  it('records requests, latency, overhead, TTFT, tokens, spend, holds, breakers, queues, event-loop lag', async () => {
    const u = await g.createUser(5);
    const client = new OpenAI({ apiKey: u.apiKey, baseURL: g.v1 });
    const model = 'openai/gpt-4o-mini';
    const r = await client.chat.completions.create({
      model,
      messages: [{ role: 'user', content: 'hi there' }],
    });
    const s = await client.chat.completions.create({
      model,
      messages: [{ role: 'user', content: 'stream please' }],
      stream: true,
    });
    for await (const _ of s) {
    }
    await expect(
      client.chat.completions.create({ model: 'no/such-model', messages: [{ role: 'user', content: 'x' }] }),
    ).rejects.toThrow();
    await new Promise((r) => setTimeout(r, 50)); // the stream's connection close is recorded on 'close'
    const text = await (await scrape()).text();
    const chat = { route: '/v1/chat/completions', method: 'POST' };
    expect(sample(text, 'gatewayz_http_requests_total', { ...chat, status: '200' })).toBe(2);
    expect(
      sample(text, 'gatewayz_http_requests_total', { ...chat, status: '404' }) ??
        sample(text, 'gatewayz_http_requests_total', { ...chat, status: '400' }),
    ).toBe(1);
    expect(sample(text, 'gatewayz_http_request_duration_seconds_count', chat)).toBe(3);
    expect(
      sample(text, 'gatewayz_inference_requests_total', { provider: 'openrouter', model, status: 'ok' }),
    ).toBe(2);
    expect(sample(text, 'gatewayz_upstream_duration_seconds_count', { provider: 'openrouter' })).toBe(2);
    expect(sample(text, 'gatewayz_gateway_overhead_seconds_count')).toBe(2);
    expect(sample(text, 'gatewayz_time_to_first_token_seconds_count', { provider: 'openrouter' })).toBe(2);
    const usage = or.calls.map((c: any) => c.usage).filter(Boolean);
    const promptIn = usage.reduce((a: number, x: any) => a + x.prompt_tokens, 0);
    const out = usage.reduce((a: number, x: any) => a + x.completion_tokens, 0);
    expect(sample(text, 'gatewayz_tokens_total', { model, direction: 'in' })).toBe(promptIn);
    expect(sample(text, 'gatewayz_tokens_total', { model, direction: 'out' })).toBe(out);
    const ledger = await g.gw.billing.ledgerSum(u.userId);
    const spent = 5_000_000 - ledger;
    expect(spent).toBeGreaterThan(0);
    expect(
      Math.round((sample(text, 'gatewayz_spend_usd_total', { provider: 'openrouter', model }) ?? 0) * 1e6),
    ).toBe(spent);
    expect((r as any).gateway_usage.cost_micros).toBeGreaterThan(0);
    expect(sample(text, 'gatewayz_holds_in_flight')).toBe(0);
    expect(sample(text, 'gatewayz_breaker_state', { provider: 'openrouter' })).toBe(0);
    expect(sample(text, 'gatewayz_queue_depth', { queue: 'trace_export' })).not.toBeNull();
    expect(sample(text, 'nodejs_eventloop_lag_seconds')).not.toBeNull();
    expect(sample(text, 'gatewayz_requests_in_flight')).toBe(1); // the scrape itself
  });

  it('a refusal by a limit (429 from a guard) counts as a rate-limit refusal', async () => {
    const { GatewayError } = await import('../../src/lib/errors.js');
    let refuse = true;
    g.gw.pipeline.addGuard({
      name: 'test-limit',
      check() {
        if (refuse)
          throw new GatewayError(429, 'slow down', { type: 'rate_limit_error', code: 'test_limit' });
        return undefined;
      },
    });
    const u = await g.createUser(1);
    const client = new OpenAI({ apiKey: u.apiKey, baseURL: g.v1, maxRetries: 0 });
    await expect(
      client.chat.completions.create({
        model: 'openai/gpt-4o-mini',
        messages: [{ role: 'user', content: 'x' }],
      }),
    ).rejects.toThrow();
    refuse = false;
    const text = await (await scrape()).text();
    expect(sample(text, 'gatewayz_rate_limit_refusals_total', { code: 'test_limit' })).toBe(1);
  });

  it('exports OTLP/HTTP JSON spans around the pipeline stages to the collector', async () => {
    // A caller's W3C traceparent: the request's span joins that trace.
    const u = await g.createUser(1);
    const callerTrace = '4bf92f3577b34da6a3ce929d0e0e4736';
    const r = await fetch(`${g.v1}/chat/completions`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${u.apiKey}`,
        'content-type': 'application/json',
        traceparent: `00-${callerTrace}-00f067aa0ba902b7-01`,
      },
      body: JSON.stringify({ model: 'openai/gpt-4o-mini', messages: [{ role: 'user', content: 'traced' }] }),
    });
    expect(r.status).toBe(200);
    await g.gw.tracer!.flush();
    const joined = collector.got.spans.find(
      (s) => s.name === 'gatewayz.request' && s.traceId === callerTrace,
    );
    expect(joined?.parentSpanId).toBe('00f067aa0ba902b7');
    expect(joined?.kind).toBe(2);
    const spans = collector.got.spans;
    const roots = spans.filter((s) => s.name === 'gatewayz.request');
    expect(roots.length).toBeGreaterThanOrEqual(3);
    const ok = roots.find(
      (r) =>
        r.status.code === 0 &&
        spans.some((s) => s.parentSpanId === r.spanId && s.name === 'gatewayz.respond'),
    )!;
    expect(ok).toBeTruthy();
    expect(ok.traceId).toMatch(/^[0-9a-f]{32}$/);
    expect(ok.spanId).toMatch(/^[0-9a-f]{16}$/);
    const children = spans.filter((s) => s.parentSpanId === ok.spanId);
    expect(children.map((c) => c.name)).toEqual(
      expect.arrayContaining([
        'gatewayz.guards',
        'gatewayz.route',
        'gatewayz.hold',
        'gatewayz.upstream',
        'gatewayz.respond',
      ]),
    );
    for (const c of children) {
      expect(c.traceId).toBe(ok.traceId);
      expect(BigInt(c.startTimeUnixNano)).toBeGreaterThanOrEqual(BigInt(ok.startTimeUnixNano));
      expect(BigInt(c.endTimeUnixNano)).toBeLessThanOrEqual(BigInt(ok.endTimeUnixNano));
    }
    const up = children.find((c) => c.name === 'gatewayz.upstream')!;
    expect(up.attributes).toEqual(
      expect.arrayContaining([{ key: 'gatewayz.provider', value: { stringValue: 'openrouter' } }]),
    );
    expect(ok.resource.attributes).toEqual(
      expect.arrayContaining([{ key: 'service.name', value: { stringValue: 'gatewayz' } }]),
    );
    // The refused request's trace ends with an error status.
    expect(roots.some((r) => r.status.code === 2)).toBe(true);
  });
});
