import type { FastifyBaseLogger } from 'fastify';
import { fromNetworkError, fromUpstreamResponse, readLimited } from '../inference/upstream-error.js';
import type { RequestAbort } from '../lib/abort.js';
import { GatewayError } from '../lib/errors.js';
import { errors as undiciErrors } from '../providers/undici.js';
import type { UpstreamResponse, Upstreams } from '../providers/upstream.js';
import type { Balancer } from './balancer.js';
import { breakerKeys, type CircuitBreakers } from './breaker.js';
import type { RoutingSettings } from './config.js';
import type { Target } from './router.js';

const ERROR_BODY_LIMIT = 64 * 1024;

/**
 * The place for a per-provider concurrency limit around the upstream call: called before each
 * attempt; the returned function is called when that attempt is over (response relayed or failed).
 */
export type UpstreamGate = (target: Target) => Promise<() => void>;

/** What the adapter reports after relaying a response that had started (streams can fail mid-way). */
export interface RespondOutcome {
  upstreamFailed: boolean;
}

export interface AttemptHooks {
  request(t: Target): { path: string; body: string; headers?: Record<string, string> };
  /** Relay a 2xx response; throws when it failed before anything reached the client. */
  respond(
    t: Target,
    res: UpstreamResponse,
    attempt: number,
    sentAt: number,
  ): Promise<RespondOutcome | undefined>;
  /** Called when an attempt starts (the pipeline records the target of a failure). */
  onAttempt(t: Target, attempt: number): void;
  /** True once any byte went to the client: from then on nothing is retried. */
  started(): boolean;
  gone(): boolean;
}

/** How a failed attempt continues: retry the same target, try the next one, or stop. */
type Next = 'retry' | 'fallback' | 'stop';

interface Failure {
  error: GatewayError;
  next: Next;
  /** Counts against the breaker (the provider's fault, not the caller's). */
  unhealthy: boolean;
  retryAfterMs: number | null;
}

export class ClientGone extends Error {
  constructor() {
    super('client closed the connection');
  }
}

export interface AttemptResult {
  attempts: number;
}

/** Parse Retry-After (seconds or an HTTP date) into ms, or null. */
export function retryAfterMs(v: string | undefined, now: number): number | null {
  if (!v) return null;
  const s = Number(v);
  if (Number.isFinite(s) && s >= 0) return Math.round(s * 1000);
  const t = Date.parse(v);
  return Number.isNaN(t) ? null : Math.max(0, t - now);
}

/** Exponential back-off with equal jitter: half fixed, half random, capped. */
export function backoffMs(retry: number, baseMs: number, maxMs: number, random: () => number): number {
  const exp = Math.min(maxMs, baseMs * 2 ** retry);
  return Math.round(exp / 2 + (random() * exp) / 2);
}

/**
 * Walks the candidate targets: skips those whose breaker is open, retries transient failures with
 * back-off (never once the client has received a byte, never past the deadline), falls back to the
 * next target, and feeds every outcome to the breakers and the latency tracker.
 */
export class AttemptRunner {
  constructor(
    private readonly deps: {
      upstreams: Upstreams;
      breakers: CircuitBreakers;
      balancer: Balancer;
      settings: RoutingSettings;
      log: FastifyBaseLogger;
      random?: () => number;
    },
  ) {}

  async run(
    targets: readonly Target[],
    hooks: AttemptHooks,
    signal: RequestAbort,
    deadline: number,
    gate?: UpstreamGate,
  ): Promise<AttemptResult> {
    const { settings, breakers } = this.deps;
    let attempts = 0;
    let last: GatewayError | null = null;
    let shed = 0;
    for (const t of targets) {
      const keys = breakerKeys(t.provider.def.name, t.entry.id);
      if (!(this.allowedNow(keys) ?? (await this.allowed(keys)))) {
        shed++;
        continue;
      }
      for (let retry = 0; ; retry++) {
        if (hooks.gone()) throw new ClientGone();
        attempts++;
        hooks.onAttempt(t, attempts);
        const f = await this.once(t, hooks, signal, deadline, attempts, gate);
        if (!f) return { attempts };
        last = f.error;
        if (f.unhealthy) await Promise.all(keys.map((k) => breakers.failure(k))).catch(() => {});
        if (hooks.gone()) throw new ClientGone();
        if (f.next === 'stop' || hooks.started()) throw f.error;
        if (f.next !== 'retry' || retry >= settings.retry.maxRetries) break;
        const delay =
          f.retryAfterMs ??
          backoffMs(retry, settings.retry.baseMs, settings.retry.maxDelayMs, this.deps.random ?? Math.random);
        // Retry-After beyond the cap, or no time left: hand over to the next target instead.
        if (delay > settings.retry.maxDelayMs || Date.now() + delay >= deadline) break;
        if (!(await sleep(delay, signal))) break;
        if (!(await this.allowed(keys))) break;
      }
    }
    if (last) throw last;
    if (shed > 0)
      throw new GatewayError(503, 'Every provider for this model is temporarily unavailable (circuit open)', {
        type: 'upstream_error',
        code: 'circuit_open',
        headers: { 'retry-after': String(Math.ceil(settings.breaker.cooldownMs / 1000)) },
      });
    throw new GatewayError(502, 'No provider could serve the request', { type: 'upstream_error' });
  }

  /** `allowed` without a promise when every breaker can answer at once; undefined otherwise. */
  private allowedNow(keys: readonly string[]): boolean | undefined {
    const b = this.deps.breakers;
    if (!b.acquireNow) return undefined;
    for (const k of keys) {
      const r = b.acquireNow(k);
      if (r !== true) return r; // false: shed; undefined: ask `allowed` (nothing was taken)
    }
    return true;
  }

  private async allowed(keys: readonly string[]): Promise<boolean> {
    try {
      for (const k of keys) if (!(await this.deps.breakers.acquire(k))) return false;
      return true;
    } catch (err) {
      // A breaker store outage must not take traffic down with it.
      this.deps.log.warn({ err }, 'circuit breaker unavailable; allowing the call');
      return true;
    }
  }

  private timeoutsFor(t: Target, deadline: number) {
    const { settings } = this.deps;
    const own = settings.providerTimeouts[t.provider.def.name] ?? {};
    // The deadline is wall-clock time (the injectable clock drives breakers, balancer and cache only).
    const remaining = Math.max(1, deadline - Date.now());
    return {
      // a pool per connect timeout, so never derived from the remaining time; the deadline's abort covers connects
      connectMs: own.connectMs ?? settings.timeouts.connectMs,
      firstByteMs: Math.min(own.firstByteMs ?? settings.timeouts.firstByteMs, remaining),
      idleMs: own.idleMs ?? settings.timeouts.idleMs,
    };
  }

  /** One attempt; null when it succeeded. */
  private async once(
    t: Target,
    hooks: AttemptHooks,
    signal: RequestAbort,
    deadline: number,
    attempt: number,
    gate?: UpstreamGate,
  ): Promise<Failure | null> {
    const provider = t.provider.def.name;
    const keys = breakerKeys(provider, t.entry.id);
    const up = hooks.request(t);
    let release: (() => void) | null = null;
    if (gate) {
      try {
        release = await gate(t);
      } catch (err) {
        // This provider is at its concurrency cap: another target may serve it (not a health failure).
        if (err instanceof GatewayError)
          return { error: err, next: 'fallback', unhealthy: false, retryAfterMs: null };
        throw err;
      }
    }
    const measured = this.deps.balancer.begin(provider, t.entry.id);
    const sentAt = performance.now();
    try {
      let res: UpstreamResponse;
      try {
        res = await this.deps.upstreams.request({
          baseUrl: t.provider.baseUrl,
          path: up.path,
          headers: up.headers ? { ...t.provider.headers, ...up.headers } : t.provider.headers,
          body: up.body,
          abort: signal,
          timeouts: this.timeoutsFor(t, deadline),
        });
      } catch (err) {
        measured(null);
        if (hooks.gone()) throw new ClientGone();
        if (signal.aborted)
          return { error: totalTimeout(), next: 'stop', unhealthy: false, retryAfterMs: null };
        return { error: fromNetworkError(err, provider), next: 'retry', unhealthy: true, retryAfterMs: null };
      }
      measured(performance.now() - sentAt);
      if (res.statusCode >= 400) {
        const text = await readLimited(res.body, ERROR_BODY_LIMIT).catch(() => '');
        const ra = res.headers['retry-after'];
        const raText = typeof ra === 'string' ? ra : undefined;
        const error = fromUpstreamResponse(res.statusCode, text, provider, raText);
        return classifyStatus(res.statusCode, error, retryAfterMs(raText, Date.now()));
      }
      let outcome: RespondOutcome | undefined;
      try {
        outcome = await hooks.respond(t, res, attempt, sentAt);
      } catch (err) {
        if (hooks.gone()) throw new ClientGone();
        const error =
          err instanceof GatewayError
            ? err
            : signal.aborted
              ? totalTimeout()
              : isUpstreamError(err)
                ? fromNetworkError(err, provider)
                : null;
        if (!error) throw err; // our own bug: not the provider's fault, no retry
        if (!res.body.destroyed) res.body.destroy();
        // A body that failed before the client saw a byte (malformed, oversized, broken) may be retried.
        const upstreamFault = error.status >= 500;
        return {
          error,
          next: signal.aborted ? 'stop' : upstreamFault ? 'retry' : 'stop',
          unhealthy: upstreamFault && !signal.aborted,
          retryAfterMs: null,
        };
      }
      const ok = !outcome?.upstreamFailed;
      const b = this.deps.breakers;
      let pending: Array<Promise<void>> | null = null;
      for (const k of keys) {
        if (ok && b.successNow?.(k)) continue;
        pending ??= [];
        pending.push(ok ? b.success(k) : b.failure(k));
      }
      if (pending)
        await Promise.all(pending).catch((err) =>
          this.deps.log.warn({ err }, 'circuit breaker update failed'),
        );
      return null;
    } finally {
      release?.();
    }
  }
}

function classifyStatus(status: number, error: GatewayError, retryAfter: number | null): Failure {
  if (status === 408 || status === 429 || status >= 500)
    return { error, next: 'retry', unhealthy: true, retryAfterMs: retryAfter };
  // The provider refused our credentials or does not have the model: another may serve it.
  if (status === 401 || status === 402 || status === 403)
    return { error, next: 'fallback', unhealthy: true, retryAfterMs: null };
  if (status === 404 || status === 409)
    return { error, next: 'fallback', unhealthy: false, retryAfterMs: null };
  // The caller's own mistake (400, 413, 422…): the same request fails everywhere.
  return { error, next: 'stop', unhealthy: false, retryAfterMs: null };
}

function totalTimeout(): GatewayError {
  return new GatewayError(504, 'The request took longer than the gateway allows', {
    type: 'timeout_error',
    code: 'timeout',
  });
}

function isUpstreamError(err: unknown): boolean {
  const e = err as { code?: string; name?: string };
  return (
    err instanceof undiciErrors.UndiciError ||
    e?.name === 'AbortError' ||
    e?.name === 'TimeoutError' ||
    (typeof e?.code === 'string' && /^(E[A-Z]+|UND_ERR)/.test(e.code))
  );
}

function sleep(ms: number, signal: RequestAbort): Promise<boolean> {
  if (signal.aborted) return Promise.resolve(false);
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      signal.off(onAbort);
      resolve(true);
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      resolve(false);
    };
    signal.on(onAbort);
  });
}
