import type { FastifyReply } from 'fastify';
import { Counter, collectDefaultMetrics, Gauge, Registry } from 'prom-client';
import type { InferenceCall, PipelineObserver, SettleResult } from '../inference/pipeline.js';
import { GatewayError } from '../lib/errors.js';
import type { Target } from '../routing/router.js';
import { type CounterChild, FastCounter, FastGauge, FastHistogram, type HistogramChild } from './fast.js';

/** Label children of one provider+model, created once and reused by every request. */
interface ModelSeries {
  tokensIn: CounterChild;
  tokensOut: CounterChild;
  spend: CounterChild;
  byStatus: Map<string, CounterChild>;
}

interface HttpSeries {
  count: Map<number, CounterChild>;
  latency: HistogramChild;
}

/** Latency buckets in seconds: 1 ms … 2 min (LLM calls are long). */
const LATENCY = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];
/**
 * How often the event-loop delay histogram (`nodejs_eventloop_lag_p50_seconds` …) samples: its timer
 * wakes the process every time, idle or not. At 10 ms (prom-client's default) that was 100 wake-ups a
 * second and ~1 % of a core on an idle gateway, most of what it spent doing nothing (bench: idle CPU).
 * Every 100 ms, a stall of 100 ms or more is always seen and a shorter one in proportion to its length;
 * under load that is ten samples a second, 150 between two scrapes 15 s apart.
 */
const EVENT_LOOP_SAMPLE_MS = 100;

/** The gateway's own overhead is small: 50 µs … 250 ms. */
const OVERHEAD = [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25];

export type GaugeSource = () => number | Promise<number>;
export type LabeledSource = () => Iterable<[string, number]> | Promise<Iterable<[string, number]>>;

/**
 * The gateway's Prometheus metrics, in a registry of its own (no globals: several gateways may
 * share a process in tests). Recording costs a few map lookups per request: label children are
 * created once per route/status or provider/model and reused.
 */
export class Metrics implements PipelineObserver {
  readonly registry = new Registry();
  private readonly httpRequests: FastCounter;
  private readonly httpLatency: FastHistogram;
  private readonly inference: FastCounter;
  private readonly upstreamLatency: FastHistogram;
  private readonly overhead: HistogramChild;
  private readonly ttft: FastHistogram;
  private readonly tokens: FastCounter;
  private readonly spend: FastCounter;
  private readonly refusals: Counter<string>;
  readonly inFlight: FastGauge;
  private readonly http = new Map<string, HttpSeries>();
  private readonly models = new Map<string, Map<string, ModelSeries>>();
  private readonly upstreamByProvider = new Map<string, HistogramChild>();
  private readonly ttftByProvider = new Map<string, HistogramChild>();
  private readonly queues = new Map<string, GaugeSource>();
  private breakers: LabeledSource = () => [];
  private holds: () => Promise<{ count: number; micros: number }> = async () => ({ count: 0, micros: 0 });

  constructor(opts: { defaultMetrics?: boolean; instance?: string } = {}) {
    const r = [this.registry];
    if (opts.instance) this.registry.setDefaultLabels({ instance_id: opts.instance });
    if (opts.defaultMetrics !== false)
      collectDefaultMetrics({ register: this.registry, eventLoopMonitoringPrecision: EVENT_LOOP_SAMPLE_MS });
    // The per-request series (src/metrics/fast.ts: recording without prom-client's per-call hashing).
    this.httpRequests = new FastCounter(
      'gatewayz_http_requests_total',
      'HTTP requests by route, method and status',
      ['route', 'method', 'status'],
      this.registry,
    );
    this.httpLatency = new FastHistogram(
      'gatewayz_http_request_duration_seconds',
      'Time from request to the end of the response (streams: to the last byte)',
      ['route', 'method'],
      LATENCY,
      this.registry,
    );
    this.inference = new FastCounter(
      'gatewayz_inference_requests_total',
      'Inference requests by serving provider, model and outcome',
      ['provider', 'model', 'status'],
      this.registry,
    );
    this.upstreamLatency = new FastHistogram(
      'gatewayz_upstream_duration_seconds',
      'Time from sending to the provider until the response was settled',
      ['provider'],
      LATENCY,
      this.registry,
    );
    this.overhead = new FastHistogram(
      'gatewayz_gateway_overhead_seconds',
      'Time spent in the gateway before the upstream call (auth, guards, hold, routing)',
      [],
      OVERHEAD,
      this.registry,
    ).child();
    this.ttft = new FastHistogram(
      'gatewayz_time_to_first_token_seconds',
      'Time from request to the first byte of the answer sent to the client',
      ['provider'],
      LATENCY,
      this.registry,
    );
    this.tokens = new FastCounter(
      'gatewayz_tokens_total',
      'Tokens charged, by direction (in = prompt, out = completion)',
      ['provider', 'model', 'direction'],
      this.registry,
    );
    this.spend = new FastCounter(
      'gatewayz_spend_usd_total',
      'Amount charged to users (USD; exact values are in the ledger)',
      ['provider', 'model'],
      this.registry,
    );
    this.refusals = new Counter({
      name: 'gatewayz_rate_limit_refusals_total',
      help: 'Requests refused by a limit (HTTP 429) before reaching a provider, by error code',
      labelNames: ['code'],
      registers: r,
    });
    this.refusals.labels('rate_limit_exceeded'); // the usual code, exported from the start (0)
    this.inFlight = new FastGauge(
      'gatewayz_requests_in_flight',
      'HTTP requests (and streams) this instance is serving now',
      this.registry,
    );
    const self = this;
    new Gauge({
      name: 'gatewayz_holds_in_flight',
      help: 'Credit holds not yet settled or released (whole fleet: read from the database)',
      registers: r,
      async collect() {
        this.set((await self.holds()).count);
      },
    });
    new Gauge({
      name: 'gatewayz_holds_in_flight_usd',
      help: 'Sum of the credit holds not yet settled or released (USD, whole fleet)',
      registers: r,
      async collect() {
        this.set((await self.holds()).micros / 1e6);
      },
    });
    new Gauge({
      name: 'gatewayz_breaker_state',
      help: 'Circuit breaker per provider: 0 closed, 1 half-open, 2 open',
      labelNames: ['provider'],
      registers: r,
      async collect() {
        this.reset();
        for (const [p, v] of await self.breakers()) this.labels(p).set(v);
      },
    });
    new Gauge({
      name: 'gatewayz_queue_depth',
      help: 'Items waiting in an internal queue',
      labelNames: ['queue'],
      registers: r,
      async collect() {
        this.reset();
        for (const [name, f] of self.queues) this.labels(name).set(await f());
      },
    });
  }

  /** Where `gatewayz_holds_in_flight` reads from (the holds table). */
  setHoldsSource(f: () => Promise<{ count: number; micros: number }>): void {
    this.holds = f;
  }

  /** Where `gatewayz_breaker_state` reads from: [provider, 0|1|2] pairs. */
  setBreakerSource(f: LabeledSource): void {
    this.breakers = f;
  }

  /** Register a queue whose depth `gatewayz_queue_depth{queue=name}` reports. */
  addQueue(name: string, depth: GaugeSource): void {
    this.queues.set(name, depth);
  }

  /** A request refused by a limit (for limits that refuse outside the pipeline). */
  refused(code: string): void {
    this.refusals.labels(code).inc();
  }

  /** One HTTP response finished (or its connection closed). */
  httpDone(route: string, method: string, status: number, seconds: number): void {
    const key = method === 'GET' || method === 'POST' ? route : `${method} ${route}`;
    let s = this.http.get(key);
    if (!s) {
      s = { count: new Map(), latency: this.httpLatency.child(route, method) };
      this.http.set(key, s);
    }
    let c = s.count.get(status);
    if (!c) {
      c = this.httpRequests.child(route, method, String(status));
      s.count.set(status, c);
    }
    c.inc();
    s.latency.observe(seconds);
  }

  private series(provider: string, model: string): ModelSeries {
    let byModel = this.models.get(provider);
    if (!byModel) {
      byModel = new Map();
      this.models.set(provider, byModel);
    }
    let s = byModel.get(model);
    if (!s) {
      s = {
        tokensIn: this.tokens.child(provider, model, 'in'),
        tokensOut: this.tokens.child(provider, model, 'out'),
        spend: this.spend.child(provider, model),
        byStatus: new Map(),
      };
      byModel.set(model, s);
    }
    return s;
  }

  private countInference(s: ModelSeries, provider: string, model: string, status: string): void {
    let c = s.byStatus.get(status);
    if (!c) {
      c = this.inference.child(provider, model, status);
      s.byStatus.set(status, c);
    }
    c.inc();
  }

  private perProvider(map: Map<string, HistogramChild>, h: FastHistogram, provider: string): HistogramChild {
    let c = map.get(provider);
    if (!c) {
      c = h.child(provider);
      map.set(provider, c);
    }
    return c;
  }

  // ---- PipelineObserver ----

  responding(call: InferenceCall, t: Target, reply: FastifyReply): void {
    const child = this.perProvider(this.ttftByProvider, this.ttft, t.provider.def.name);
    const raw = reply.raw;
    if (!call.stream) {
      // A JSON answer's first token reaches the client with the whole body.
      raw.once('finish', () => child.observe((performance.now() - call.startedAt) / 1000));
      return;
    }
    // Streams: the first write after the headers carries the first chunk.
    const write = raw.write;
    raw.write = function (this: typeof raw, ...args: any[]) {
      raw.write = write;
      child.observe((performance.now() - call.startedAt) / 1000);
      return (write as any).apply(this, args);
    } as typeof raw.write;
  }

  settled(
    call: InferenceCall,
    t: Target,
    s: SettleResult,
    status: string,
    overheadMs: number,
    upstreamMs: number,
  ): void {
    const provider = t.provider.def.name;
    const series = this.series(provider, t.entry.id);
    this.countInference(series, provider, t.entry.id, status);
    if (s.usage.promptTokens) series.tokensIn.inc(s.usage.promptTokens);
    if (s.usage.completionTokens) series.tokensOut.inc(s.usage.completionTokens);
    if (s.costMicros) series.spend.inc(s.costMicros / 1e6);
    this.overhead.observe(overheadMs / 1000);
    this.perProvider(this.upstreamByProvider, this.upstreamLatency, provider).observe(upstreamMs / 1000);
    void call;
  }

  failed(call: InferenceCall, t: Target | null, err: unknown): void {
    const status = err instanceof GatewayError ? err.status : 500;
    if (!t) {
      if (status === 429)
        this.refused(err instanceof GatewayError ? (err.code ?? 'rate_limited') : 'rate_limited');
      return;
    }
    const provider = t.provider.def.name;
    this.countInference(this.series(provider, t.entry.id), provider, t.entry.id, `error_${status}`);
    void call;
  }
}
