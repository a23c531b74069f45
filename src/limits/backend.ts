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
  expiresAt: number;
}

/** In-process counters: exact for one process, synchronous, so trivially atomic. */
export class MemoryBackend implements LimiterBackend {
  readonly kind = 'memory' as const;
  private readonly counters = new Map<string, Counter>();
  private readonly leases = new Map<string, Map<string, number>>();
  private nextSweep = 0;

  async check(input: CheckInput): Promise<CheckResult> {
    const { now } = input;
    this.sweep(now);
    const used: number[] = [];
    const resetMs: number[] = [];
    const lists: Array<Array<[number, number]>> = [];
    let denied = -1;
    let retryMs = 0;
    input.counters.forEach((spec, i) => {
      const c = this.counters.get(spec.key);
      const live: Array<[number, number]> = [];
      let sum = 0;
      if (c) {
        for (const [b, n] of c.buckets) {
          if (b < spec.start) c.buckets.delete(b);
          else {
            sum += n;
            live.push([b, n]);
          }
        }
      }
      lists.push(live);
      used.push(sum);
      if (denied < 0 && sum + spec.amount > spec.limit) {
        denied = i;
        retryMs = retryAfterMs(spec, now, live, sum);
      }
    });
    const inFlight: number[] = [];
    input.leases.forEach((l, i) => {
      const m = this.leases.get(l.key);
      if (m) for (const [id, exp] of m) if (exp <= now) m.delete(id);
      const n = m?.size ?? 0;
      inFlight.push(n);
      if (denied < 0 && n + 1 > l.limit) {
        denied = input.counters.length + i;
        retryMs = 1000;
      }
    });
    if (denied < 0 && !input.dry) {
      input.counters.forEach((spec, i) => {
        let c = this.counters.get(spec.key);
        if (!c) {
          c = { buckets: new Map(), expiresAt: 0 };
          this.counters.set(spec.key, c);
        }
        c.buckets.set(spec.cur, (c.buckets.get(spec.cur) ?? 0) + spec.amount);
        c.expiresAt = now + spec.ttlMs;
        used[i]! += spec.amount;
        const live = lists[i]!;
        const at = live.findIndex(([b]) => b === spec.cur);
        if (at >= 0) live[at] = [spec.cur, live[at]![1] + spec.amount];
        else live.push([spec.cur, spec.amount]);
      });
      input.leases.forEach((l, i) => {
        let m = this.leases.get(l.key);
        if (!m) {
          m = new Map();
          this.leases.set(l.key, m);
        }
        m.set(l.id, l.expiresAt);
        inFlight[i]! += 1;
      });
    }
    input.counters.forEach((spec, i) => {
      resetMs.push(fullResetMs(spec, now, lists[i]!));
    });
    return { denied, retryMs, used, resetMs, inFlight };
  }

  async settle(adjustments: Adjustment[], leases: Array<{ key: string; id: string }>): Promise<void> {
    for (const a of adjustments) {
      const c = this.counters.get(a.key);
      const v = c?.buckets.get(a.field);
      if (c && v !== undefined) c.buckets.set(a.field, Math.max(0, v + a.delta));
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
      c = { buckets: new Map(), expiresAt: now + ttlMs };
      this.counters.set(key, c);
    }
    c.buckets.set(field, value);
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
