import { type CounterSpec, fullResetMs, retryAfterMs } from './windows.js';

/** A concurrency lease: one request in flight, kept until released or expired (a crashed process). */
export interface LeaseSpec {
  key: string;
  limit: number;
  id: string;
  expiresAt: number;
}

export interface CheckInput {
  now: number;
  counters: CounterSpec[];
  leases: LeaseSpec[];
  /** Read only: report usage, change nothing. */
  dry?: boolean;
}

export interface CheckResult {
  /** -1 when admitted; else the index of the refusing counter, or counters.length + lease index. */
  denied: number;
  /** When the refusing limit has room again; -1 = never (the request alone exceeds the limit). */
  retryMs: number;
  /** Per counter: units used, including this request's when admitted. */
  used: number[];
  /** Per counter: ms until the window is back to zero. */
  resetMs: number[];
  /** Per lease: requests in flight, including this one when admitted. */
  inFlight: number[];
}

/** A correction of a counter after the request ended (unused token reservation). */
export interface Adjustment {
  key: string;
  field: number;
  delta: number;
}

/** Where counters live: this process (memory) or Redis. A check is atomic: all counters or none. */
export interface LimiterBackend {
  readonly kind: 'memory' | 'redis';
  check(input: CheckInput): Promise<CheckResult>;
  settle(adjustments: Adjustment[], leases: Array<{ key: string; id: string }>): Promise<void>;
  close(): Promise<void>;
}

interface Counter {
  buckets: Map<number, number>;
  /** Sum of `buckets`. */
  sum: number;
  /** No bucket id is below this (buckets below a window's start are dropped when it passes them). */
  oldest: number;
  expiresAt: number;
}

/**
 * In-process counters: exact for one process, synchronous, so trivially atomic. Each counter keeps
 * its running sum, so a check costs the same however many buckets a window holds: buckets are
 * visited only when the window's start has passed the oldest of them (each bucket once, to drop it).
 */
export class MemoryBackend implements LimiterBackend {
  readonly kind = 'memory' as const;
  private readonly counters = new Map<string, Counter>();
  private readonly leases = new Map<string, Map<string, number>>();
  private nextSweep = 0;

  async check(input: CheckInput): Promise<CheckResult> {
    return this.checkNow(input);
  }

  /** `check`, synchronously (the limits service's hot path: no promise, no turn of the microtask queue). */
  checkNow(input: CheckInput): CheckResult {
    const { now, counters: specs } = input;
    this.sweep(now);
    const n = specs.length;
    const used = new Array<number>(n);
    const found = new Array<Counter | undefined>(n);
    let denied = -1;
    let retryMs = 0;
    for (let i = 0; i < n; i++) {
      const spec = specs[i]!;
      const c = this.counters.get(spec.key);
      if (c && c.oldest < spec.start) expire(c, spec.start);
      found[i] = c;
      const sum = c ? c.sum : 0;
      used[i] = sum;
      if (denied < 0 && sum + spec.amount > spec.limit) {
        denied = i;
        retryMs = retryAfterMs(spec, now, live(c), sum);
      }
    }
    const leases = input.leases;
    const inFlight = new Array<number>(leases.length);
    for (let i = 0; i < leases.length; i++) {
      const l = leases[i]!;
      const m = this.leases.get(l.key);
      let count = m?.size ?? 0;
      // Expired leases (a release that never came) are dropped only when they could matter: at the
      // limit, or for a report. Scanning them on every request cost a pass over every request in
      // flight of the subject (2,000 open streams: 2,000 entries per new request).
      if (m && (count + 1 > l.limit || input.dry)) {
        for (const [id, exp] of m) if (exp <= now) m.delete(id);
        count = m.size;
      }
      inFlight[i] = count;
      if (denied < 0 && count + 1 > l.limit) {
        denied = specs.length + i;
        retryMs = 1000;
      }
    }
    if (denied < 0 && !input.dry) {
      for (let i = 0; i < n; i++) {
        const spec = specs[i]!;
        let c = found[i];
        if (!c) {
          c = { buckets: new Map(), sum: 0, oldest: spec.cur, expiresAt: 0 };
          this.counters.set(spec.key, c);
          found[i] = c;
        }
        c.buckets.set(spec.cur, (c.buckets.get(spec.cur) ?? 0) + spec.amount);
        c.sum += spec.amount;
        if (spec.cur < c.oldest) c.oldest = spec.cur;
        c.expiresAt = now + spec.ttlMs;
        used[i]! += spec.amount;
      }
      for (let i = 0; i < leases.length; i++) {
        const l = leases[i]!;
        let m = this.leases.get(l.key);
        if (!m) {
          m = new Map();
          this.leases.set(l.key, m);
        }
        m.set(l.id, l.expiresAt);
        inFlight[i]! += 1;
      }
    }
    const resetMs = new Array<number>(n);
    for (let i = 0; i < n; i++) resetMs[i] = resetOf(specs[i]!, now, found[i]);
    return { denied, retryMs, used, resetMs, inFlight };
  }

  async settle(adjustments: Adjustment[], leases: Array<{ key: string; id: string }>): Promise<void> {
    this.settleNow(adjustments, leases);
  }

  /** `settle`, synchronously. */
  settleNow(adjustments: Adjustment[], leases: Array<{ key: string; id: string }>): void {
    for (const a of adjustments) {
      const c = this.counters.get(a.key);
      const v = c?.buckets.get(a.field);
      if (c && v !== undefined) {
        const next = Math.max(0, v + a.delta);
        c.buckets.set(a.field, next);
        c.sum += next - v;
      }
    }
    for (const l of leases) {
      const m = this.leases.get(l.key);
      m?.delete(l.id);
      if (m && m.size === 0) this.leases.delete(l.key);
    }
  }

  /**
   * Start a calendar counter from a known value (usage already recorded in the database), unless
   * this process has counted it already: quotas survive a restart of a single process.
   */
  seed(key: string, field: number, value: number, now: number, ttlMs: number): void {
    let c = this.counters.get(key);
    if (c?.buckets.has(field)) return;
    if (!c) {
      c = { buckets: new Map(), sum: 0, oldest: field, expiresAt: now + ttlMs };
      this.counters.set(key, c);
    }
    c.buckets.set(field, value);
    c.sum += value;
    if (field < c.oldest) c.oldest = field;
  }

  /** Drop counters nobody touched for their whole lifetime (bounded memory). */
  private sweep(now: number): void {
    if (now < this.nextSweep) return;
    this.nextSweep = now + 60_000;
    for (const [k, c] of this.counters) if (c.expiresAt <= now) this.counters.delete(k);
    for (const [k, m] of this.leases) {
      for (const [id, exp] of m) if (exp <= now) m.delete(id);
      if (m.size === 0) this.leases.delete(k);
    }
  }

  async close(): Promise<void> {}
}

/** Drop the buckets below `start` (they left the window). */
function expire(c: Counter, start: number): void {
  let oldest = Number.POSITIVE_INFINITY;
  for (const [b, n] of c.buckets) {
    if (b < start) {
      c.buckets.delete(b);
      c.sum -= n;
    } else if (b < oldest) oldest = b;
  }
  c.oldest = oldest === Number.POSITIVE_INFINITY ? start : oldest;
}

/** The live buckets of a counter, for the rare computations that need them. */
function live(c: Counter | undefined): Array<[number, number]> {
  return c ? [...c.buckets] : [];
}

/** ms until everything counted now has left the window; the calendar windows need no buckets. */
function resetOf(spec: CounterSpec, now: number, c: Counter | undefined): number {
  if (spec.bucketMs === 0 || !c) return fullResetMs(spec, now, []);
  // The newest bucket is almost always the current one (just counted); else look at them all.
  const cur = c.buckets.get(spec.cur);
  if (cur !== undefined && cur > 0)
    return Math.max(0, (spec.cur + spec.cur - spec.start + 1) * spec.bucketMs - now);
  return fullResetMs(spec, now, live(c));
}
