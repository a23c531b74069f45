import type { FastifyBaseLogger, FastifyReply } from 'fastify';
import type { Principal } from '../accounts/principal.js';
import { affordableCompletionTokens, costOf, emptyUsage, type Price, type Usage } from '../billing/cost.js';
import type { BillingStore, UsageRecord } from '../billing/store.js';
import { RequestAbort } from '../lib/abort.js';
import { GatewayError } from '../lib/errors.js';
import { newId } from '../lib/ids.js';
import { microsToUsd } from '../lib/money.js';
import type { UpstreamResponse, Upstreams } from '../providers/upstream.js';
import {
  type AttemptRunner,
  ClientGone,
  type RespondOutcome,
  type UpstreamGate,
} from '../routing/attempts.js';
import type { ResponseCache } from '../routing/cache.js';
import { type CacheSettings, type CacheUse, openCacheUse, serveCached } from '../routing/cache-serve.js';
import { requestTimeoutMs, stickyKeyOf } from '../routing/request-options.js';
import type { ProviderPreference, Router, Target } from '../routing/router.js';

/** One inference request as the pipeline sees it, whatever the endpoint. */
export interface InferenceCall {
  requestId: string;
  principal: Principal;
  endpoint: string;
  model: string;
  providerPref: ProviderPreference | null;
  /** Models to try after `model` (OpenRouter's `models`), before the configured fallback chain. */
  fallbackModels?: readonly string[] | null;
  stream: boolean;
  /** Cheap upper bound of prompt tokens, for the hold. */
  promptTokensBound: number;
  /** Output tokens the caller asked for at most (per choice), or null for the model's maximum. */
  maxOutputTokens: number | null;
  choices: number;
  /** Billable units priced per unit (images). */
  units: number;
  /** Price of a target when it is not the catalog entry's own (images priced by size); throws to refuse. */
  priceOf?: (t: Target) => Price;
  app: string | null;
  clientIp: string;
  headers: Record<string, string | string[] | undefined>;
  startedAt: number;
  /** Headers guards add to the response (rate-limit state, …); merged into every response of the call. */
  responseHeaders: Record<string, string>;
}

/** A guard runs before anything is held or sent; it throws to refuse and may return a release for the end. */
export type GuardRelease = (outcome: { usage: Usage | null; costMicros: number }) => void | Promise<void>;
export interface Guard {
  name: string;
  check(call: InferenceCall): GuardRelease | undefined | Promise<GuardRelease | undefined>;
}

export interface SettleResult {
  costMicros: number;
  balanceAfter: number | null;
  usage: Usage;
}

export interface RespondIO {
  call: InferenceCall;
  target: Target;
  attempts: number;
  reply: FastifyReply;
  /** Aborted when the client goes away or the request's total time runs out. */
  signal: RequestAbort;
  clientGone(): boolean;
  /** ms spent upstream so far (from send to now). */
  upstreamMs(): number;
  /** Headers every response of this request carries (request id, serving target, caps, overhead). */
  gatewayHeaders(): Record<string, string>;
  /** Charge for what was delivered; exactly once. Non-stream adapters call it before responding. */
  settle(usage: Usage, status: string): Promise<SettleResult>;
  gatewayUsage(s: SettleResult): Record<string, unknown>;
  /** Set when the response cache wants this response: hand over what the client received, once complete. */
  remember?(kind: 'json' | 'sse', body: string, usage: Usage): void;
}

export interface Adapter {
  upstream(
    target: Target,
    maxTokensCap: number | null,
  ): { path: string; body: string; headers?: Record<string, string> };
  /** Adapters whose relay can fail after the first byte (streams) say so, for the circuit breaker. */
  // biome-ignore lint/suspicious/noConfusingVoidType: most adapters return nothing
  respond(res: UpstreamResponse, io: RespondIO): Promise<void | RespondOutcome>;
  /** Response cache support: whether the body asked for it (`cache: true`) and the request's key (null: not cacheable). */
  cache?: { requested: boolean; key(userId: string): string | null };
}

/** Metrics hooks (src/metrics); each is called at most once per request and must stay cheap. */
export interface PipelineObserver {
  /** The upstream answered 2xx and the adapter starts responding. */
  responding(call: InferenceCall, t: Target, reply: FastifyReply): void;
  settled(
    call: InferenceCall,
    t: Target,
    s: SettleResult,
    status: string,
    overheadMs: number,
    upstreamMs: number,
  ): void;
  failed(call: InferenceCall, t: Target | null, err: unknown): void;
}

/** A span of a trace (src/metrics/tracing); absent when tracing is off. */
export interface PipelineSpan {
  set(key: string, value: string | number | boolean): void;
  end(err?: unknown): void;
}
export interface PipelineTracer {
  start(name: string, parent?: PipelineSpan, attrs?: Record<string, string | number | boolean>): PipelineSpan;
  /** The caller's span from a W3C `traceparent` header, so the request joins the caller's trace. */
  remoteParent(traceparent: unknown): PipelineSpan | undefined;
}

export interface PipelineDeps {
  observer?: PipelineObserver;
  tracer?: PipelineTracer;
  billing: BillingStore;
  router: Router;
  upstreams: Upstreams;
  log: FastifyBaseLogger;
  guards: Guard[];
  holdTtlMs: number;
  totalTimeoutMs: number;
  minAffordableTokens: number;
  /** Retries, fallbacks, breakers, timeouts (src/routing/attempts.ts). */
  attempts: AttemptRunner;
  responseCache?: ResponseCache | null;
  cacheSettings?: CacheSettings;
  /** Per-provider concurrency hook around each upstream attempt (limits). */
  upstreamGate?: UpstreamGate;
}

const DEFAULT_MAX_OUTPUT = 4096;
/** How long a user refused by a guard is admitted strictly in order (guards, then the hold). */
const GUARD_REFUSED_MS = 1000;

/** A request's hold: its id (null when it costs nothing) and the output cap it was sized for. */
interface Held {
  holdId: string | null;
  cap: number | null;
}

/**
 * The one path every inference request walks: guard → route → hold → call → settle → respond
 * (the hold taken while a guard waits for its answer: see `admit`).
 * Nothing reaches a provider any other way.
 */
export class Pipeline {
  /** Runs in progress (graceful shutdown waits for them: their settle and hold release included). */
  private active = 0;
  private idleWaiters: Array<() => void> = [];
  /** Users a guard refused lately, until when their requests are admitted in order (see admit). */
  private readonly guardRefused = new Map<string, number>();

  constructor(private readonly deps: PipelineDeps) {}

  /** Resolves when no run is in progress (every hold settled or released), or after `timeoutMs`. */
  async drain(timeoutMs: number): Promise<boolean> {
    if (this.active === 0) return true;
    return new Promise<boolean>((resolve) => {
      const t = setTimeout(() => resolve(this.active === 0), timeoutMs);
      this.idleWaiters.push(() => {
        clearTimeout(t);
        resolve(true);
      });
    });
  }

  inFlight(): number {
    return this.active;
  }

  addGuard(g: Guard): void {
    this.deps.guards.push(g);
  }

  /** Install the per-provider concurrency gate (called around every upstream attempt). */
  setUpstreamGate(gate: UpstreamGate): void {
    this.deps.upstreamGate = gate;
  }

  async run(call: InferenceCall, adapter: Adapter, reply: FastifyReply): Promise<void> {
    this.active++;
    try {
      await this.runOnce(call, adapter, reply);
    } finally {
      if (--this.active === 0 && this.idleWaiters.length) {
        for (const w of this.idleWaiters.splice(0)) w();
      }
    }
  }

  private async runOnce(call: InferenceCall, adapter: Adapter, reply: FastifyReply): Promise<void> {
    const { deps } = this;
    const releases: GuardRelease[] = [];
    let guardsReleased = false;
    // Guards (concurrency slots, token reservations) are released as soon as the charge is settled,
    // before the client receives the end of its response, so its next request finds the slot free;
    // on every other exit path, at the very end.
    const releaseGuards = async () => {
      if (guardsReleased) return;
      guardsReleased = true;
      const st = settled as SettleResult | null;
      const outcome = { usage: st?.usage ?? null, costMicros: st?.costMicros ?? 0 };
      for (const r of releases) {
        try {
          // Most releases are synchronous: awaiting only a promise saves a turn of the microtask queue each.
          const p = r(outcome);
          if (p) await p;
        } catch (e) {
          deps.log.error({ err: e }, 'guard release failed');
        }
      }
    };
    let holdId: string | null = null;
    let settled: SettleResult | null = null;
    let target: Target | null = null;
    const totalMs = requestTimeoutMs(call.headers, deps.totalTimeoutMs);
    const deadline = Date.now() + totalMs;
    const abort = new RequestAbort();
    let gone = false;
    const onClose = () => {
      if (!reply.raw.writableFinished) {
        gone = true;
        abort.abort(new Error('client closed the connection'));
      }
    };
    reply.raw.on('close', onClose);
    const timer = setTimeout(() => abort.abort(new DOMException('total timeout', 'TimeoutError')), totalMs);
    const span = deps.tracer?.start('gatewayz.request', deps.tracer.remoteParent(call.headers.traceparent), {
      'gatewayz.request_id': call.requestId,
      'gatewayz.endpoint': call.endpoint,
      'gatewayz.model': call.model,
      'gatewayz.stream': call.stream,
    });
    let stage: PipelineSpan | undefined;
    try {
      const { targets, hold } = await this.admit(call, releases, span);
      holdId = hold.holdId;
      const cache: CacheUse | null = openCacheUse(call, adapter, deps.responseCache, deps.cacheSettings);
      if (cache) {
        const hit = await cache.lookup();
        if (hit) {
          const t =
            targets.find((x) => x.provider.def.name === hit.provider && x.entry.id === hit.model) ??
            targets[0]!;
          target = t;
          await serveCached(hit, reply, {
            ratio: deps.cacheSettings?.hitPriceRatio ?? 0,
            price: priceFor(call, t),
            settle: async (usage, cost) => {
              settled = await this.settle(call, t, holdId, usage, 'cache_hit', cost, hit);
              holdId = null;
              await releaseGuards();
              deps.observer?.settled(call, t, settled, 'cache_hit', performance.now() - call.startedAt, 0);
              return settled;
            },
            headers: () => ({
              ...this.headers(call, t, 0, null, performance.now()),
              'x-gatewayz-provider': hit.provider,
              'x-gatewayz-model': hit.model,
            }),
            gatewayUsage: (st) => this.gatewayUsage(call, hit.provider, hit.model, 0, null, st),
          });
          return;
        }
      }
      const ioFor = (t: Target, attempts: number, sentAt: number): RespondIO => ({
        call,
        target: t,
        attempts,
        reply,
        signal: abort,
        clientGone: () => gone,
        upstreamMs: () => performance.now() - sentAt,
        gatewayHeaders: () => this.headers(call, t, attempts, hold.cap, sentAt),
        settle: async (usage, status) => {
          if (settled) return settled;
          settled = await this.settle(call, t, holdId, usage, status);
          holdId = null;
          await releaseGuards();
          deps.observer?.settled(
            call,
            t,
            settled,
            status,
            sentAt - call.startedAt,
            performance.now() - sentAt,
          );
          return settled;
        },
        gatewayUsage: (st) =>
          this.gatewayUsage(call, t.provider.def.name, t.entry.id, attempts, hold.cap, st),
        remember: cache ? (kind, body, usage) => cache.store(kind, body, usage, t) : undefined,
      });
      let respondingSeen = false;
      try {
        await deps.attempts.run(
          targets,
          {
            request: (t) => adapter.upstream(t, hold.cap),
            onAttempt: (t, n) => {
              stage?.end();
              target = t;
              stage = deps.tracer?.start('gatewayz.upstream', span, {
                'gatewayz.provider': t.provider.def.name,
                'gatewayz.attempt': n,
              });
            },
            respond: async (t, res, n, sentAt) => {
              stage?.set('http.response.status_code', res.statusCode);
              stage?.end();
              // the observer's contract is once per request, even when a broken 2xx body is retried
              if (!respondingSeen) deps.observer?.responding(call, t, reply);
              respondingSeen = true;
              stage = deps.tracer?.start('gatewayz.respond', span, {
                'gatewayz.provider': t.provider.def.name,
              });
              const outcome = await adapter.respond(res, ioFor(t, n, sentAt));
              stage?.end();
              stage = undefined;
              return outcome ?? undefined;
            },
            started: () => reply.sent || reply.raw.headersSent,
            gone: () => gone,
          },
          abort,
          deadline,
          deps.upstreamGate,
        );
      } catch (err) {
        if (err instanceof ClientGone) return;
        throw err;
      }
      return;
    } catch (err) {
      stage?.end(err);
      span?.end(err);
      if (!settled) deps.observer?.failed(call, target, err);
      if (!settled && target && err instanceof GatewayError && err.status >= 500) {
        await this.recordFailure(call, target, holdId, err).catch((e) =>
          deps.log.error({ err: e }, 'failure record'),
        );
        holdId = null;
      }
      if (gone && !reply.sent) return;
      if (!reply.sent) reply.headers({ ...call.responseHeaders, 'x-request-id': call.requestId });
      throw err;
    } finally {
      clearTimeout(timer);
      span?.end();
      reply.raw.off('close', onClose);
      if (holdId)
        await deps.billing
          .release(holdId)
          .catch((e) => deps.log.error({ err: e, holdId }, 'hold release failed'));
      await releaseGuards();
    }
  }

  /**
   * The guards, the route and the hold, in that order, or all of them refused with nothing held.
   *
   * A guard that must wait (Redis' rate limits, a plan or trial not cached) would leave the hold's own
   * wait (PostgreSQL's batch) to begin only after its answer: two round trips one after the other
   * before the upstream call. So once a guard returns a promise, the route is planned and the hold
   * taken meanwhile, and the rest of the guards run in order after it. The outcome is the same as in
   * order: a refusal by a guard comes first (before a routing error or a refused hold), and the hold
   * taken meanwhile is released before it is reported, so a refused request holds nothing once
   * answered. A user refused by a guard in the last second is admitted in order (guards first), so
   * a client past its limits writes a hold and its release for at most one refused request a second.
   */
  private async admit(
    call: InferenceCall,
    releases: GuardRelease[],
    span: PipelineSpan | undefined,
  ): Promise<{ targets: readonly Target[]; hold: Held }> {
    const { deps } = this;
    const stage = deps.tracer?.start('gatewayz.guards', span);
    let waiting: Promise<void> | null = null;
    try {
      const guards = deps.guards;
      for (let i = 0; i < guards.length; i++) {
        // A guard whose answer is cached answers synchronously: await only a promise.
        const c = guards[i]!.check(call);
        if (c instanceof Promise) {
          waiting = this.restOfGuards(c, i + 1, call, releases);
          break;
        }
        if (c) releases.push(c);
      }
      if (waiting && !this.overlapAllowed(call.principal.userId)) {
        await waiting;
        waiting = null;
      }
    } catch (err) {
      stage?.end(err);
      this.refusedByGuard(call.principal.userId);
      throw err;
    }
    if (!waiting) {
      stage?.end();
      const targets = this.plan(call, span);
      return { targets, hold: await this.holdTraced(call, targets, span) };
    }
    let targets: readonly Target[] | null = null;
    let planErr: unknown = null;
    try {
      targets = this.plan(call, span);
    } catch (err) {
      planErr = err;
    }
    const holding = targets ? this.holdTraced(call, targets, span) : null;
    holding?.catch(() => {}); // reported below, after the guards' answer
    try {
      await waiting;
      stage?.end();
    } catch (err) {
      stage?.end(err);
      this.refusedByGuard(call.principal.userId);
      const held = holding ? await holding.catch(() => null) : null;
      if (held?.holdId)
        await deps.billing
          .release(held.holdId)
          .catch((e) => deps.log.error({ err: e, holdId: held.holdId }, 'hold release failed'));
      throw err;
    }
    if (!holding) throw planErr;
    return { targets: targets!, hold: await holding };
  }

  /** The guards from `next` on, after the one whose answer `first` is; in order. */
  private async restOfGuards(
    first: Promise<GuardRelease | undefined>,
    next: number,
    call: InferenceCall,
    releases: GuardRelease[],
  ): Promise<void> {
    const r = await first;
    if (r) releases.push(r);
    const guards = this.deps.guards;
    for (let i = next; i < guards.length; i++) {
      const c = guards[i]!.check(call);
      const r = c instanceof Promise ? await c : c;
      if (r) releases.push(r);
    }
  }

  /** Every candidate, fallback models included: the hold covers the most expensive of them. */
  private plan(call: InferenceCall, span: PipelineSpan | undefined): readonly Target[] {
    const stage = this.deps.tracer?.start('gatewayz.route', span);
    try {
      const targets = this.deps.router.plan(call.model, call.providerPref, {
        fallbackModels: call.fallbackModels,
        user: stickyKeyOf(call),
      });
      stage?.end();
      return targets;
    } catch (err) {
      stage?.end(err);
      throw err;
    }
  }

  /** The hold, in a span of its own when tracing is on (no extra async frame per request when it is off). */
  private holdTraced(
    call: InferenceCall,
    targets: readonly Target[],
    span: PipelineSpan | undefined,
  ): Promise<Held> {
    const tracer = this.deps.tracer;
    if (!tracer) return this.hold(call, targets);
    const stage = tracer.start('gatewayz.hold', span);
    return this.hold(call, targets).then(
      (h) => {
        stage.end();
        return h;
      },
      (err: unknown) => {
        stage.end(err);
        throw err;
      },
    );
  }

  private overlapAllowed(userId: string | null): boolean {
    if (userId === null) return false;
    const until = this.guardRefused.get(userId);
    if (until === undefined) return true;
    if (Date.now() < until) return false;
    this.guardRefused.delete(userId);
    return true;
  }

  private refusedByGuard(userId: string | null): void {
    if (userId === null) return;
    if (this.guardRefused.size >= 10_000) this.guardRefused.clear();
    this.guardRefused.set(userId, Date.now() + GUARD_REFUSED_MS);
  }

  /** Hold the worst case; if the balance cannot cover it, cap the output to what it can pay for. */
  private async hold(call: InferenceCall, targets: readonly Target[]): Promise<Held> {
    const userId = call.principal.userId;
    if (!userId)
      throw new GatewayError(403, 'Inference needs a user API key, not the admin key', {
        code: 'user_key_required',
      });
    const maxOut = (t: Target) =>
      call.maxOutputTokens ?? t.entry.maxOutputTokens ?? t.entry.contextLength ?? DEFAULT_MAX_OUTPUT;
    const worst = (outPerChoice: (t: Target) => number) => {
      let max = 0;
      for (const t of targets) {
        const c = costOf(
          {
            ...emptyUsage(),
            promptTokens: call.promptTokensBound,
            completionTokens: outPerChoice(t) * call.choices,
            units: call.units,
          },
          priceFor(call, t),
        );
        if (c > max) max = c;
      }
      return max;
    };
    const full = worst(maxOut);
    if (full === 0) return { holdId: null, cap: null };
    const id = newId('hold');
    const now = Date.now();
    if (
      await this.deps.billing.hold(
        id,
        userId,
        call.principal.keyId,
        full,
        call.requestId,
        now,
        this.deps.holdTtlMs,
      )
    ) {
      return { holdId: id, cap: null };
    }
    for (let tries = 0; tries < 3; tries++) {
      const available = (await this.deps.billing.available(userId)) ?? 0;
      let affordable = Number.MAX_SAFE_INTEGER;
      for (const t of targets)
        affordable = Math.min(affordable, affordableFor(available, call, priceFor(call, t)));
      const perChoice = Math.floor(affordable / call.choices);
      if (call.units > 0 || perChoice < this.deps.minAffordableTokens) break;
      const cap = Math.min(perChoice, ...targets.map(maxOut));
      const amount = worst(() => cap);
      if (
        await this.deps.billing.hold(
          id,
          userId,
          call.principal.keyId,
          amount,
          call.requestId,
          Date.now(),
          this.deps.holdTtlMs,
        )
      ) {
        return { holdId: id, cap };
      }
    }
    const available = Math.max(0, (await this.deps.billing.available(userId)) ?? 0);
    throw new GatewayError(
      402,
      `Insufficient credits: this request needs up to $${microsToUsd(full).toFixed(6)} and $${microsToUsd(available).toFixed(6)} is available`,
      { type: 'insufficient_credits', code: 'insufficient_credits' },
    );
  }

  private record(call: InferenceCall, t: Target, usage: Usage, cost: number, status: string): UsageRecord {
    return {
      request_id: call.requestId,
      user_id: call.principal.userId!,
      key_id: call.principal.keyId,
      endpoint: call.endpoint,
      model: t.entry.id,
      provider: t.provider.def.name,
      prompt_tokens: usage.promptTokens,
      completion_tokens: usage.completionTokens,
      cached_tokens: usage.cachedTokens,
      reasoning_tokens: usage.reasoningTokens,
      cost_micros: cost,
      latency_ms: Math.round(performance.now() - call.startedAt),
      status,
      stream: call.stream ? 1 : 0,
      app: call.app,
      created_at: Date.now(),
    };
  }

  private async settle(
    call: InferenceCall,
    t: Target,
    holdId: string | null,
    usage: Usage,
    status: string,
    /** A cache hit's price (a share of the original cost) and the provider/model that originally served it. */
    costOverride?: number,
    servedBy?: { provider: string; model: string },
  ): Promise<SettleResult> {
    const cost = costOverride ?? costOf(usage, priceFor(call, t));
    const rec = this.record(call, t, usage, cost, status);
    if (servedBy) {
      rec.provider = servedBy.provider;
      rec.model = servedBy.model;
    }
    let lastErr: unknown;
    // A charge is never dropped: retry a transient storage failure before giving up loudly.
    for (let i = 0; i < 3; i++) {
      try {
        const balanceAfter = await this.deps.billing.settle(holdId, cost, rec, call.principal.keyId);
        return { costMicros: cost, balanceAfter, usage };
      } catch (err) {
        lastErr = err;
        await new Promise((r) => setTimeout(r, 20 * (i + 1)));
      }
    }
    this.deps.log.error({ err: lastErr, requestId: call.requestId, cost }, 'settle failed');
    throw lastErr;
  }

  private gatewayUsage(
    call: InferenceCall,
    provider: string,
    model: string,
    attempts: number,
    cap: number | null,
    s: SettleResult,
  ): Record<string, unknown> {
    return {
      tokens_charged: s.usage.promptTokens + s.usage.completionTokens,
      prompt_tokens: s.usage.promptTokens,
      completion_tokens: s.usage.completionTokens,
      cost_usd: microsToUsd(s.costMicros),
      cost_micros: s.costMicros,
      request_ms: Math.round(performance.now() - call.startedAt),
      provider,
      model,
      attempts,
      ...(cap !== null ? { max_tokens_capped: cap } : {}),
      ...(s.balanceAfter !== null ? { balance_usd: microsToUsd(s.balanceAfter) } : {}),
    };
  }

  private async recordFailure(
    call: InferenceCall,
    t: Target,
    holdId: string | null,
    err: GatewayError,
  ): Promise<void> {
    await this.deps.billing.settle(
      holdId,
      0,
      this.record(call, t, emptyUsage(), 0, `error_${err.status}`),
      null,
    );
  }

  private headers(
    call: InferenceCall,
    t: Target,
    attempts: number,
    cap: number | null,
    sentAt: number,
  ): Record<string, string> {
    // Copied key by key: spreading the guards' headers (an object grown one key at a time) took
    // V8's slow path on every request.
    const h: Record<string, string> = {};
    const extra = call.responseHeaders;
    for (const k in extra) h[k] = extra[k]!;
    h['x-request-id'] = call.requestId;
    h['x-gatewayz-provider'] = t.provider.def.name;
    h['x-gatewayz-model'] = t.entry.id;
    h['x-gatewayz-attempts'] = String(attempts);
    h['x-gatewayz-overhead-ms'] = (sentAt - call.startedAt).toFixed(3);
    if (cap !== null) h['x-gatewayz-max-tokens-capped'] = String(cap);
    return h;
  }
}

const priceFor = (call: InferenceCall, t: Target): Price => call.priceOf?.(t) ?? t.entry.price!;

function affordableFor(available: number, call: InferenceCall, price: Price): number {
  return affordableCompletionTokens(available, call.promptTokensBound, price);
}
