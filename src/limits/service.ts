import type { FastifyBaseLogger } from 'fastify';
import type { Redis } from 'ioredis';
import type { Principal } from '../accounts/principal.js';
import type { Guard, GuardRelease, InferenceCall } from '../inference/pipeline.js';
import { GatewayError } from '../lib/errors.js';
import { newRedis } from '../lib/optional.js';
import {
  type Adjustment,
  type CheckResult,
  type LeaseSpec,
  type LimiterBackend,
  MemoryBackend,
} from './backend.js';
import type { LimitsConfig, LimitValues } from './config.js';
import { defaultPlanSource, type PlanLimits, type PlanLimitsSource } from './plan-limits.js';
import { closeRedis } from './redis-backend.js';
import { applyOverride, fromPlan, halve } from './resolve.js';
import type { LimitsStore, OverrideRow, SubjectType } from './store.js';
import {
  type CounterSpec,
  periodStart,
  position,
  WINDOWS,
  type WindowName,
  type WindowPosition,
} from './windows.js';

type Dim = 'requests' | 'tokens';
const FIELD: Record<Dim, Record<WindowName, keyof LimitValues>> = {
  requests: {
    minute: 'requestsPerMinute',
    hour: 'requestsPerHour',
    day: 'requestsPerDay',
    month: 'requestsPerMonth',
  },
  tokens: { minute: 'tokensPerMinute', hour: 'tokensPerHour', day: 'tokensPerDay', month: 'tokensPerMonth' },
};

/** The limits that apply to one subject, and where they came from. */
export interface SubjectLimits {
  scope: SubjectType;
  id: string;
  limits: LimitValues;
  plan: PlanLimits | null;
  override: OverrideRow | null;
}

interface Cached<T> {
  value: Promise<T>;
  at: number;
  /** The value once the promise resolved: the hot path reads it without awaiting. */
  resolved?: T;
}

interface Meta {
  scope: SubjectType;
  id: string;
  dim: Dim;
  window: WindowName;
  /** The counter's limit as its x-ratelimit-limit-* header value (made once). */
  limitText: string;
}

/** A subject's counters and concurrency lease, as every check of it builds them. */
interface Layout {
  counters: Array<{ key: string; limit: number; windowIndex: number; meta: Meta }>;
  lease: { key: string; limit: number; meta: { scope: SubjectType; id: string } } | null;
  /** The UTC day this process last seeded the subject's quotas from the database (memory backend). */
  seededDay: number;
}

/** What one request takes from the backend, and what its answer is read with. */
interface LimitRequest {
  input: { now: number; counters: CounterSpec[]; leases: LeaseSpec[] };
  meta: Meta[];
  leaseMeta: Array<{ scope: SubjectType; id: string }>;
  /** Tokens taken from every tokens counter, corrected when the request ends. */
  reserve: number;
}

const DAY_MS = 86_400_000;

export interface LimitsServiceOptions {
  config: LimitsConfig;
  store: LimitsStore;
  backend: LimiterBackend;
  log: FastifyBaseLogger;
  /** A concurrency lease of a crashed process expires after this long. */
  leaseTtlMs: number;
  /** Redis URL for cross-instance invalidation (pub/sub); null polls the table instead. */
  redisUrl?: string | null;
  now?: () => number;
  /** Minimum gap between two "limiter backend down" log lines. */
  logIntervalMs?: number;
  /** How often the override table is polled for changes when there is no Redis. */
  pollMs?: number;
}

/**
 * Per-user and per-key limits: requests and tokens per minute, hour, day and month, and requests
 * in flight. Limits are resolved once per subject and cached (no database read per request);
 * one backend round trip checks and takes every counter of a request before the upstream call.
 */
export class LimitsService {
  readonly config: LimitsConfig;
  private readonly cache = new Map<string, Cached<SubjectLimits>>();
  private planSource: PlanLimitsSource;
  private now: () => number;
  private down: { since: number; error: string } | null = null;
  private lastLogAt = 0;
  private readonly logIntervalMs: number;
  private sub: Redis | null = null;
  private pollTimer: NodeJS.Timeout | null = null;
  private version: string | null = null;
  private readonly channel: string;
  private readonly seeded = new Map<string, Promise<void>>();
  private readonly onSettleFailed = (err: unknown) => this.backendFailed(err);
  /** Keyed by the cached resolved limits: a new resolution (TTL, invalidation) gets a new layout. */
  private readonly layouts = new WeakMap<SubjectLimits, Layout>();
  private positionsSecond = -1;
  private positions: WindowPosition[] = [];

  constructor(private readonly o: LimitsServiceOptions) {
    this.config = o.config;
    this.planSource = defaultPlanSource(o.config);
    this.now = o.now ?? Date.now;
    this.logIntervalMs = o.logIntervalMs ?? 30_000;
    this.channel = `${o.config.redisPrefix}invalidate`;
  }

  get backend(): LimiterBackend {
    return this.o.backend;
  }

  /** Starts cross-instance invalidation (Redis pub/sub, or a once-a-second table poll). */
  async start(): Promise<void> {
    if (this.o.redisUrl) {
      // ioredis's own resubscription leaves its promise unobserved (an unhandled rejection when the
      // connection drops again at once): subscribe ourselves on every 'ready', with a catch.
      const sub = newRedis(this.o.redisUrl, {
        maxRetriesPerRequest: null,
        connectTimeout: 1000,
        autoResubscribe: false,
      });
      sub.on('error', () => {});
      sub.on('message', () => this.cache.clear());
      // Invalidations sent while disconnected are lost: forget everything on (re)connect.
      sub.on('ready', () => {
        this.cache.clear();
        sub.subscribe(this.channel).catch((e) => this.o.log.warn({ err: e }, 'limits: subscribe failed'));
      });
      this.sub = sub;
    } else {
      const poll = async () => {
        try {
          const v = await this.o.store.version();
          if (this.version !== null && v !== this.version) this.cache.clear();
          this.version = v;
        } catch (e) {
          this.o.log.warn({ err: e }, 'limits: override poll failed');
        }
      };
      await poll();
      this.pollTimer = setInterval(poll, this.o.pollMs ?? 500);
      this.pollTimer.unref();
    }
  }

  async close(): Promise<void> {
    if (this.pollTimer) clearInterval(this.pollTimer);
    if (this.sub) await closeRedis(this.sub);
    await this.o.backend.close();
  }

  /** The commerce feature plugs its plans in here; resolved limits are re-read afterwards. */
  setPlanSource(fn: PlanLimitsSource): void {
    this.planSource = fn;
    this.cache.clear();
  }

  getPlanSource(): PlanLimitsSource {
    return this.planSource;
  }

  /** Replace the clock (tests; windows roll without sleeping). */
  setClock(now: () => number): void {
    this.now = now;
  }

  /** Forget resolved limits on every instance (after an override or plan change). */
  async invalidate(): Promise<void> {
    this.cache.clear();
    if (this.o.backend.kind === 'redis') {
      const client = (this.o.backend as unknown as { client: Redis }).client;
      await client.publish(this.channel, String(this.now())).catch((e) => this.backendFailed(e));
    }
  }

  /** Resolved limits of a user: the admin override over the plan (or the DEFAULT_* config). */
  userLimits(userId: string): Promise<SubjectLimits> {
    return this.cached(`u:${userId}`, async () => {
      const [plan, override] = await Promise.all([
        this.planSource(userId),
        this.o.store.find('user', userId),
      ]);
      return {
        scope: 'user' as const,
        id: userId,
        limits: applyOverride(fromPlan(plan, this.config), override),
        plan,
        override: override ?? null,
      };
    });
  }

  /**
   * Resolved limits of a key: its override over the user's limits, halved for test, staging and
   * dev keys. Null when the key adds nothing beyond its user's limits (a live key without override).
   */
  async keyLimits(p: Principal): Promise<SubjectLimits | null> {
    if (!p.keyId || !p.userId) return null;
    const user = await this.userLimits(p.userId);
    const keyId = p.keyId;
    const live = (p.environment ?? 'live') === 'live';
    const k = await this.cached(`k:${keyId}`, async () => {
      const override = await this.o.store.find('key', keyId);
      return {
        scope: 'key' as const,
        id: keyId,
        limits: applyOverride(live ? user.limits : halve(user.limits), override),
        plan: user.plan,
        override: override ?? null,
      };
    });
    return keySubject(p, k);
  }

  private cached(key: string, load: () => Promise<SubjectLimits>): Promise<SubjectLimits> {
    const now = Date.now();
    const hit = this.cache.get(key);
    if (hit && now - hit.at < this.config.cacheTtlMs) return hit.value;
    const value = load();
    const entry: Cached<SubjectLimits> = { value, at: now };
    value.then(
      (v) => {
        entry.resolved = v;
      },
      () => this.cache.delete(key),
    );
    if (this.cache.size > 100_000) this.cache.clear();
    this.cache.set(key, entry);
    return value;
  }

  /**
   * The layouts a request of `p` is checked against when everything is at hand: both subjects'
   * limits resolved and fresh in the cache, their quotas seeded by this process today (the common
   * case: no await). Null otherwise. The same subjects as `userLimits` and `keyLimits`.
   */
  private cachedLayouts(p: Principal, now: number): Layout[] | null {
    const fresh = (key: string) => {
      const e = this.cache.get(key);
      return e?.resolved !== undefined && Date.now() - e.at < this.config.cacheTtlMs ? e.resolved : null;
    };
    const user = fresh(`u:${p.userId}`);
    if (!user) return null;
    let key: SubjectLimits | null = null;
    if (p.keyId) {
      const k = fresh(`k:${p.keyId}`);
      if (!k) return null;
      key = keySubject(p, k);
    }
    const day = Math.floor(now / DAY_MS);
    const a = this.layoutOf(user);
    if (a.seededDay !== day) return null;
    if (!key) return [a];
    const b = this.layoutOf(key);
    return b.seededDay === day ? [a, b] : null;
  }

  /** Worst-case tokens of a request: its prompt bound plus its output cap for every choice. */
  reservation(call: InferenceCall): number {
    const out = call.maxOutputTokens ?? this.config.outputTokensBound;
    return Math.max(1, call.promptTokensBound + out * Math.max(1, call.choices));
  }

  /** The guard the pipeline runs before holding credits or calling upstream. */
  guard(): Guard {
    return { name: 'rate-limits', check: (call) => this.check(call) };
  }

  /**
   * Check and take every counter of the request. Synchronous when the subjects' limits are cached
   * and the counters live in this process (no promise, no await on the hot path); otherwise a
   * promise (Redis, a first request, a concurrency slot to wait for).
   */
  check(call: InferenceCall): GuardRelease | undefined | Promise<GuardRelease | undefined> {
    if (!this.config.enabled) return undefined;
    const p = call.principal;
    if (!p.userId) return undefined;
    const mem = this.o.backend instanceof MemoryBackend ? this.o.backend : null;
    if (mem) {
      const now = this.now();
      const layouts = this.cachedLayouts(p, now);
      if (layouts) {
        const req = this.request(call, layouts, now);
        if (!req) return undefined;
        const r = mem.checkNow(req.input);
        // A concurrency refusal may wait for a slot to free up: the asynchronous path does that.
        if (!this.isConcurrencyDenial(r, req.input.counters)) return this.admitted(call, req, r);
      }
    }
    return this.checkWaiting(call);
  }

  /** The check with every await: limits to resolve, quotas to seed, Redis, a slot to wait for. */
  private async checkWaiting(call: InferenceCall): Promise<GuardRelease | undefined> {
    const p = call.principal;
    const userId = p.userId!;
    const subjects = [await this.userLimits(userId)];
    const key = await this.keyLimits(p);
    if (key) subjects.push(key);
    const now = this.now();
    const layouts = subjects.map((s) => this.layoutOf(s));
    if (this.o.backend instanceof MemoryBackend) {
      const day = Math.floor(now / DAY_MS);
      for (let i = 0; i < subjects.length; i++) {
        if (layouts[i]!.seededDay === day) continue;
        await this.seedQuotas(this.o.backend, subjects[i]!, userId, now);
        layouts[i]!.seededDay = day;
      }
    }
    const req = this.request(call, layouts, now);
    if (!req) return undefined;
    const input = req.input;
    let r: CheckResult;
    try {
      r = await this.o.backend.check(input);
      // A slot freed by a response the client has just read may land a moment after its next
      // request: wait briefly for it rather than refuse a client that never exceeded the limit.
      for (
        let pause = 5, waited = 0;
        this.isConcurrencyDenial(r, input.counters) && waited < this.config.concurrencyWaitMs;
      ) {
        await new Promise((res) => setTimeout(res, pause));
        waited += pause;
        pause = Math.min(pause * 2, 40);
        r = await this.o.backend.check(input);
      }
      this.backendOk();
    } catch (err) {
      this.backendFailed(err);
      if (this.config.failure === 'open') return undefined;
      throw new GatewayError(503, 'Rate limiting is unavailable; try again shortly', {
        type: 'rate_limit_unavailable',
        code: 'rate_limit_unavailable',
        headers: { 'retry-after': '1' },
      });
    }
    return this.admitted(call, req, r);
  }

  /** The counters and leases a request takes; null when none of its subjects has a limit. */
  private request(call: InferenceCall, layouts: Layout[], now: number): LimitRequest | null {
    const reserve = this.reservation(call);
    const counters: CounterSpec[] = [];
    const meta: Meta[] = [];
    const leases: LeaseSpec[] = [];
    const leaseMeta: Array<{ scope: SubjectType; id: string }> = [];
    // The gateway's request ids are unique (never the caller's), so they name the lease.
    const leaseId = call.requestId;
    const positions = this.positionsAt(now);
    for (const layout of layouts) {
      for (const c of layout.counters) {
        const pos = positions[c.windowIndex]!;
        counters.push({
          key: c.key,
          amount: c.meta.dim === 'requests' ? 1 : reserve,
          limit: c.limit,
          cur: pos.cur,
          start: pos.start,
          bucketMs: pos.bucketMs,
          periodEnd: pos.periodEnd,
          ttlMs: pos.ttlMs,
        });
        meta.push(c.meta);
      }
      if (layout.lease) {
        leases.push({
          key: layout.lease.key,
          limit: layout.lease.limit,
          id: leaseId,
          expiresAt: now + this.o.leaseTtlMs,
        });
        leaseMeta.push(layout.lease.meta);
      }
    }
    if (counters.length === 0 && leases.length === 0) return null;
    return { input: { now, counters, leases }, meta, leaseMeta, reserve };
  }

  /**
   * Where each window stands at `now` (WINDOWS' order), worked out once per second: a sliding
   * window's buckets are whole seconds or minutes; a calendar counter's lifetime may run up to a
   * second past what `position` at the exact millisecond would give.
   */
  private positionsAt(now: number): WindowPosition[] {
    const second = Math.floor(now / 1000);
    if (second !== this.positionsSecond) {
      const at = second * 1000;
      this.positions = WINDOWS.map((w) => position(w, at));
      this.positionsSecond = second;
    }
    return this.positions;
  }

  /** After the backend's answer: the rate-limit headers, the refusal, or the release for the end. */
  private admitted(call: InferenceCall, req: LimitRequest, r: CheckResult): GuardRelease {
    const { counters, leases } = req.input;
    setRateLimitHeaders(call.responseHeaders, counters, req.meta, r);
    if (r.denied >= 0) throw this.refusal(counters, req.meta, leases, req.leaseMeta, r);
    const reserve = req.reserve;
    const meta = req.meta;
    let released = false;
    // Sent, not awaited: the answer does not wait for Redis' reply to the release. This process's
    // next check goes on the same connection after it, and Redis runs one connection's commands in
    // order, so a client's next request through this instance finds its slot free and its tokens
    // refunded; one through another instance arrives at least a round trip later than the release.
    return (outcome) => {
      if (released) return;
      released = true;
      const u = outcome.usage;
      const actual = u ? u.promptTokens + u.completionTokens : 0;
      const delta = actual - reserve;
      const adjustments: Adjustment[] = [];
      if (delta !== 0)
        for (let i = 0; i < counters.length; i++)
          if (meta[i]!.dim === 'tokens')
            adjustments.push({ key: counters[i]!.key, field: counters[i]!.cur, delta });
      const held = leases.map((l) => ({ key: l.key, id: l.id }));
      // The leases expire by themselves; a lost refund only over-counts, never under-counts.
      const backend = this.o.backend;
      if (backend instanceof MemoryBackend) backend.settleNow(adjustments, held);
      else backend.settle(adjustments, held).catch(this.onSettleFailed);
    };
  }

  /** A subject's counters and lease, worked out once per resolved limits (keys, limits, windows). */
  private layoutOf(s: SubjectLimits): Layout {
    let l = this.layouts.get(s);
    if (!l) {
      const base = `${this.config.redisPrefix}${s.scope}:${s.id}:`;
      const counters: Layout['counters'] = [];
      for (const dim of ['requests', 'tokens'] as const) {
        WINDOWS.forEach((w, windowIndex) => {
          const limit = s.limits[FIELD[dim][w]];
          if (limit === null) return;
          counters.push({
            key: `${base}${dim}:${w}`,
            limit,
            windowIndex,
            meta: { scope: s.scope, id: s.id, dim, window: w, limitText: String(limit) },
          });
        });
      }
      const lease =
        s.limits.concurrency === null
          ? null
          : { key: `${base}inflight`, limit: s.limits.concurrency, meta: { scope: s.scope, id: s.id } };
      l = { counters, lease, seededDay: -1 };
      this.layouts.set(s, l);
    }
    return l;
  }

  /**
   * In-process counters start empty: the first time this process sees a subject with a day or month
   * quota, start those counters from the usage the database has recorded (one read per subject and
   * process), so a restart does not hand out a fresh quota.
   */
  private async seedQuotas(mem: MemoryBackend, s: SubjectLimits, userId: string, now: number) {
    const windows = (['day', 'month'] as const).filter(
      (w) => s.limits[FIELD.requests[w]] !== null || s.limits[FIELD.tokens[w]] !== null,
    );
    if (windows.length === 0) return;
    const id = `${s.scope}:${s.id}:${position('day', now).cur}`;
    let p = this.seeded.get(id);
    if (!p) {
      p = (async () => {
        for (const w of windows) {
          const pos = position(w, now);
          const u = await this.o.store.usageSince(
            userId,
            periodStart(w, now),
            s.scope === 'key' ? s.id : null,
          );
          const base = `${this.config.redisPrefix}${s.scope}:${s.id}`;
          mem.seed(`${base}:requests:${w}`, pos.cur, u.requests, now, pos.ttlMs);
          mem.seed(`${base}:tokens:${w}`, pos.cur, u.tokens, now, pos.ttlMs);
        }
      })();
      if (this.seeded.size > 100_000) this.seeded.clear();
      this.seeded.set(id, p);
      p.catch(() => this.seeded.delete(id));
    }
    await p;
  }

  private isConcurrencyDenial(r: CheckResult, counters: CounterSpec[]): boolean {
    return r.denied >= counters.length;
  }

  private refusal(
    counters: CounterSpec[],
    meta: Meta[],
    leases: LeaseSpec[],
    leaseMeta: Array<{ scope: SubjectType; id: string }>,
    r: CheckResult,
  ): GatewayError {
    const retryS = r.retryMs < 0 ? null : Math.max(1, Math.ceil(r.retryMs / 1000));
    const headers: Record<string, string> = retryS === null ? {} : { 'retry-after': String(retryS) };
    if (r.denied >= counters.length) {
      const i = r.denied - counters.length;
      const l = leases[i]!;
      const m = leaseMeta[i]!;
      return new GatewayError(
        429,
        `Rate limit reached for ${m.scope} ${m.id}: at most ${l.limit} concurrent requests, ${r.inFlight[i]} in flight`,
        { type: 'concurrency_exceeded', code: 'rate_limit_exceeded', headers },
      );
    }
    const c = counters[r.denied]!;
    const m = meta[r.denied]!;
    const type = `${m.dim}_per_${m.window}_exceeded`;
    const what = `${m.dim} per ${m.window}`;
    const tail =
      retryS === null
        ? `; this request alone may use ${c.amount} ${m.dim}, more than the limit`
        : `; try again in ${retryS}s`;
    return new GatewayError(
      429,
      `Rate limit reached for ${m.scope} ${m.id}: ${what} limit ${c.limit}, used ${r.used[r.denied]}${tail}`,
      { type, code: retryS === null ? 'request_too_large' : 'rate_limit_exceeded', headers },
    );
  }

  /** Current usage of a subject's limited windows and requests in flight (read only). */
  async usage(s: SubjectLimits): Promise<{
    windows: Array<{ dim: Dim; window: WindowName; limit: number; used: number; resetMs: number }>;
    inFlight: number | null;
  }> {
    const now = this.now();
    const counters: CounterSpec[] = [];
    const meta: Array<{ dim: Dim; window: WindowName }> = [];
    for (const dim of ['requests', 'tokens'] as const) {
      for (const w of WINDOWS) {
        const limit = s.limits[FIELD[dim][w]];
        if (limit === null) continue;
        counters.push({
          key: `${this.config.redisPrefix}${s.scope}:${s.id}:${dim}:${w}`,
          amount: 0,
          limit: Number.MAX_SAFE_INTEGER,
          ...position(w, now),
        });
        meta.push({ dim, window: w });
      }
    }
    const leases: LeaseSpec[] =
      s.limits.concurrency === null
        ? []
        : [
            {
              key: `${this.config.redisPrefix}${s.scope}:${s.id}:inflight`,
              limit: Number.MAX_SAFE_INTEGER,
              id: 'peek',
              expiresAt: 0,
            },
          ];
    const r = await this.o.backend.check({ now, counters, leases, dry: true });
    return {
      windows: meta.map((m, i) => ({
        ...m,
        limit: s.limits[FIELD[m.dim][m.window]] as number,
        used: r.used[i]!,
        resetMs: r.resetMs[i]!,
      })),
      inFlight: leases.length ? r.inFlight[0]! : null,
    };
  }

  backendOk(): void {
    if (!this.down) return;
    this.o.log.info({ downForMs: Date.now() - this.down.since }, 'rate limiter backend recovered');
    this.down = null;
  }

  backendFailed(err: unknown): void {
    const now = Date.now();
    if (!this.down) this.down = { since: now, error: String((err as Error)?.message ?? err) };
    if (now - this.lastLogAt >= this.logIntervalMs) {
      this.lastLogAt = now;
      this.o.log.error(
        { err, failureMode: this.config.failure },
        `rate limiter backend (${this.o.backend.kind}) unavailable; failing ${this.config.failure}`,
      );
    }
  }

  /** For /health. */
  health(): { status: string; backend: string; failure_mode: string; down_since?: string; error?: string } {
    const base = { backend: this.o.backend.kind, failure_mode: this.config.failure };
    if (!this.config.enabled) return { status: 'disabled', ...base };
    if (this.down)
      return {
        status: 'down',
        ...base,
        down_since: new Date(this.down.since).toISOString(),
        error: this.down.error,
      };
    return { status: 'ok', ...base };
  }
}

/** A key's own limits apply only when it has an override or is not a live key (then they are halved). */
function keySubject(p: Principal, k: SubjectLimits): SubjectLimits | null {
  return (p.environment ?? 'live') === 'live' && !k.override ? null : k;
}

/** OpenAI's duration format: `20ms`, `1s`, `6m0s`, `1h2m3s` (integer arithmetic: no toFixed per request). */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.max(0, Math.round(ms))}ms`;
  const total = Math.round(ms);
  const h = Math.floor(total / 3_600_000);
  const m = Math.floor((total % 3_600_000) / 60_000);
  const rest = total % 60_000;
  // Seconds with up to three decimals, trailing zeros dropped (1.5s, 1.05s, 1.005s, 1s).
  const whole = Math.floor(rest / 1000);
  let frac = rest % 1000;
  let digits = 3;
  while (frac !== 0 && frac % 10 === 0) {
    frac /= 10;
    digits--;
  }
  const s = frac === 0 ? `${whole}` : `${whole}.${String(frac).padStart(digits, '0')}`;
  if (h > 0) return `${h}h${m}m${s}s`;
  if (m > 0) return `${m}m${s}s`;
  return `${s}s`;
}

/** The header names per dimension, built once (a key built per request is hashed anew each time). */
const RATE_LIMIT_HEADERS = {
  requests: ['x-ratelimit-limit-requests', 'x-ratelimit-remaining-requests', 'x-ratelimit-reset-requests'],
  tokens: ['x-ratelimit-limit-tokens', 'x-ratelimit-remaining-tokens', 'x-ratelimit-reset-tokens'],
} as const;
const DIMS = ['requests', 'tokens'] as const;

/** The tightest requests and tokens limits of the request as OpenAI's x-ratelimit-* headers, into `h`. */
function setRateLimitHeaders(
  h: Record<string, string>,
  counters: CounterSpec[],
  meta: Meta[],
  r: CheckResult,
): void {
  for (const dim of DIMS) {
    let best = -1;
    let bestRemaining = Number.POSITIVE_INFINITY;
    for (let i = 0; i < counters.length; i++) {
      if (meta[i]!.dim !== dim) continue;
      const remaining = Math.max(0, counters[i]!.limit - r.used[i]!);
      if (remaining < bestRemaining) {
        best = i;
        bestRemaining = remaining;
      }
    }
    if (best < 0) continue;
    const [limit, remaining, reset] = RATE_LIMIT_HEADERS[dim];
    h[limit] = meta[best]!.limitText;
    h[remaining] = String(bestRemaining);
    h[reset] = formatDuration(r.resetMs[best]!);
  }
}
