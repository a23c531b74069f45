import type { FastifyBaseLogger, FastifyReply } from 'fastify';
import type { Dispatcher } from 'undici';
import type { Principal } from '../accounts/principal.js';
import { affordableCompletionTokens, costOf, emptyUsage, type Price, type Usage } from '../billing/cost.js';
import type { BillingStore, UsageRecord } from '../billing/store.js';
import { GatewayError } from '../lib/errors.js';
import { newId } from '../lib/ids.js';
import { microsToUsd } from '../lib/money.js';
import type { Upstreams } from '../providers/upstream.js';
import type { ProviderPreference, Router, Target } from '../routing/router.js';
import { fromNetworkError, fromUpstreamResponse, readLimited, shouldFallBack } from './upstream-error.js';

/** One inference request as the pipeline sees it, whatever the endpoint. */
export interface InferenceCall {
  requestId: string;
  principal: Principal;
  endpoint: string;
  model: string;
  providerPref: ProviderPreference | null;
  stream: boolean;
  /** Cheap upper bound of prompt tokens, for the hold. */
  promptTokensBound: number;
  /** Output tokens the caller asked for at most (per choice), or null for the model's maximum. */
  maxOutputTokens: number | null;
  choices: number;
  /** Billable units priced per unit (images). */
  units: number;
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
  signal: AbortSignal;
  clientGone(): boolean;
  /** ms spent upstream so far (from send to now). */
  upstreamMs(): number;
  /** Headers every response of this request carries (request id, serving target, caps, overhead). */
  gatewayHeaders(): Record<string, string>;
  /** Charge for what was delivered; exactly once. Non-stream adapters call it before responding. */
  settle(usage: Usage, status: string): Promise<SettleResult>;
  gatewayUsage(s: SettleResult): Record<string, unknown>;
}

export interface Adapter {
  upstream(
    target: Target,
    maxTokensCap: number | null,
  ): { path: string; body: string; headers?: Record<string, string> };
  respond(res: Dispatcher.ResponseData, io: RespondIO): Promise<void>;
}

export interface PipelineDeps {
  billing: BillingStore;
  router: Router;
  upstreams: Upstreams;
  log: FastifyBaseLogger;
  guards: Guard[];
  holdTtlMs: number;
  totalTimeoutMs: number;
  minAffordableTokens: number;
}

const DEFAULT_MAX_OUTPUT = 4096;
const ERROR_BODY_LIMIT = 64 * 1024;

/**
 * The one path every inference request walks: guard → hold → route → call → settle → respond.
 * Nothing reaches a provider any other way.
 */
export class Pipeline {
  constructor(private readonly deps: PipelineDeps) {}

  addGuard(g: Guard): void {
    this.deps.guards.push(g);
  }

  async run(call: InferenceCall, adapter: Adapter, reply: FastifyReply): Promise<void> {
    const { deps } = this;
    const releases: GuardRelease[] = [];
    let holdId: string | null = null;
    let settled: SettleResult | null = null;
    let target: Target | null = null;
    const abort = new AbortController();
    let gone = false;
    const onClose = () => {
      if (!reply.raw.writableFinished) {
        gone = true;
        abort.abort(new Error('client closed the connection'));
      }
    };
    reply.raw.on('close', onClose);
    const timer = setTimeout(
      () => abort.abort(new DOMException('total timeout', 'TimeoutError')),
      deps.totalTimeoutMs,
    );
    try {
      for (const g of deps.guards) {
        const r = await g.check(call);
        if (r) releases.push(r);
      }
      const targets = deps.router.resolve(call.model, call.providerPref);
      const hold = await this.hold(call, targets);
      holdId = hold.holdId;
      let lastError: GatewayError | null = null;
      let attempts = 0;
      for (const t of targets) {
        if (gone) return;
        target = t;
        attempts++;
        const up = adapter.upstream(t, hold.cap);
        const sentAt = performance.now();
        let res: Dispatcher.ResponseData;
        try {
          res = await deps.upstreams.request({
            baseUrl: t.provider.baseUrl,
            path: up.path,
            headers: up.headers ? { ...t.provider.headers, ...up.headers } : t.provider.headers,
            body: up.body,
            signal: abort.signal,
          });
        } catch (err) {
          if (gone) return;
          lastError = abort.signal.aborted
            ? new GatewayError(504, 'The request took longer than the gateway allows', {
                type: 'timeout_error',
                code: 'timeout',
              })
            : fromNetworkError(err, t.provider.def.name);
          if (abort.signal.aborted) break;
          continue;
        }
        if (res.statusCode >= 400) {
          const text = await readLimited(res.body, ERROR_BODY_LIMIT).catch(() => '');
          const ra = res.headers['retry-after'];
          lastError = fromUpstreamResponse(
            res.statusCode,
            text,
            t.provider.def.name,
            typeof ra === 'string' ? ra : undefined,
          );
          if (!shouldFallBack(res.statusCode)) break;
          continue;
        }
        const io: RespondIO = {
          call,
          target: t,
          attempts,
          reply,
          signal: abort.signal,
          clientGone: () => gone,
          upstreamMs: () => performance.now() - sentAt,
          gatewayHeaders: () => this.headers(call, t, attempts, hold.cap, sentAt),
          settle: async (usage, status) => {
            if (settled) return settled;
            settled = await this.settle(call, t, holdId, usage, status);
            holdId = null;
            return settled;
          },
          gatewayUsage: (s) => ({
            tokens_charged: s.usage.promptTokens + s.usage.completionTokens,
            prompt_tokens: s.usage.promptTokens,
            completion_tokens: s.usage.completionTokens,
            cost_usd: microsToUsd(s.costMicros),
            cost_micros: s.costMicros,
            request_ms: Math.round(performance.now() - call.startedAt),
            provider: t.provider.def.name,
            model: t.entry.id,
            attempts,
            ...(hold.cap !== null ? { max_tokens_capped: hold.cap } : {}),
            ...(s.balanceAfter !== null ? { balance_usd: microsToUsd(s.balanceAfter) } : {}),
          }),
        };
        await adapter.respond(res, io);
        return;
      }
      if (gone) return;
      throw (
        lastError ?? new GatewayError(502, 'No provider could serve the request', { type: 'upstream_error' })
      );
    } catch (err) {
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
      reply.raw.off('close', onClose);
      if (holdId)
        await deps.billing
          .release(holdId)
          .catch((e) => deps.log.error({ err: e, holdId }, 'hold release failed'));
      const s = settled as SettleResult | null;
      for (const r of releases) {
        try {
          await r({ usage: s?.usage ?? null, costMicros: s?.costMicros ?? 0 });
        } catch (e) {
          deps.log.error({ err: e }, 'guard release failed');
        }
      }
    }
  }

  /** Hold the worst case; if the balance cannot cover it, cap the output to what it can pay for. */
  private async hold(
    call: InferenceCall,
    targets: Target[],
  ): Promise<{ holdId: string | null; cap: number | null }> {
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
          t.entry.price!,
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
        affordable = Math.min(affordable, affordableFor(available, call, t.entry.price!));
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
  ): Promise<SettleResult> {
    const cost = costOf(usage, t.entry.price!);
    const rec = this.record(call, t, usage, cost, status);
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
    const h: Record<string, string> = {
      ...call.responseHeaders,
      'x-request-id': call.requestId,
      'x-gatewayz-provider': t.provider.def.name,
      'x-gatewayz-model': t.entry.id,
      'x-gatewayz-attempts': String(attempts),
      'x-gatewayz-overhead-ms': (sentAt - call.startedAt).toFixed(3),
    };
    if (cap !== null) h['x-gatewayz-max-tokens-capped'] = String(cap);
    return h;
  }
}

function affordableFor(available: number, call: InferenceCall, price: Price): number {
  return affordableCompletionTokens(available, call.promptTokensBound, price);
}
