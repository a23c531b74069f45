import { createHash } from 'node:crypto';
import { breakerKeys, type Clock, systemClock } from './breaker.js';
import type { BalanceSpec } from './config.js';

export interface Balanceable {
  provider: string;
}

interface Ewma {
  value: number;
  at: number;
  inFlight: number;
}

const DECAY_MS = 10_000;

/**
 * Spreads a model's traffic over the providers that serve it: weighted (Efraimidis–Spirakis
 * sampling, so the whole order is weighted, not just the first pick), latency-aware (peak-EWMA ×
 * in-flight), and sticky (the same user+model always gets the same weighted order) when asked.
 */
export class Balancer {
  private readonly latency = new Map<string, Ewma>();

  constructor(
    private readonly specs: Record<string, BalanceSpec>,
    private readonly clock: Clock = systemClock,
    private readonly random: () => number = Math.random,
  ) {}

  spec(model: string): BalanceSpec | null {
    return this.specs[model] ?? this.specs['*'] ?? null;
  }

  /** Order candidates (already in preference order) for one request. */
  order<T extends Balanceable>(
    model: string,
    candidates: T[],
    user: { key: string | null; asked: boolean } = { key: null, asked: false },
  ): T[] {
    const spec = this.spec(model);
    if (candidates.length < 2) return candidates;
    const sticky = (spec?.sticky || user.asked) && user.key ? user.key : null;
    if (!spec) return sticky ? this.weighted(model, candidates, {}, sticky) : candidates;
    if (spec.strategy === 'latency' && !sticky) return this.byLatency(model, candidates);
    if (spec.strategy === 'ordered' && !sticky) return candidates;
    return this.weighted(model, candidates, spec.weights, sticky);
  }

  private weighted<T extends Balanceable>(
    model: string,
    candidates: T[],
    weights: Record<string, number>,
    stickyKey: string | null,
  ): T[] {
    const hasWeights = Object.keys(weights).length > 0;
    const keyed = candidates.map((c, i) => {
      const w = hasWeights ? (weights[c.provider] ?? 0) : 1;
      const u = stickyKey ? unitHash(`${stickyKey}\u0000${model}\u0000${c.provider}`) : this.random();
      // -ln(u)/w: smallest first; weight 0 sorts after every weighted one, keeping preference order
      const k = w > 0 ? -Math.log(Math.max(u, Number.MIN_VALUE)) / w : Number.POSITIVE_INFINITY;
      return { c, k, i };
    });
    keyed.sort((a, b) => a.k - b.k || a.i - b.i);
    return keyed.map((x) => x.c);
  }

  private byLatency<T extends Balanceable>(model: string, candidates: T[]): T[] {
    const score = (c: T) => {
      const e = this.latency.get(`${c.provider}|${model}`);
      if (!e) return 0; // unmeasured: try it
      return this.current(e) * (e.inFlight + 1);
    };
    return candidates
      .map((c, i) => ({ c, s: score(c), i }))
      .sort((a, b) => a.s - b.s || a.i - b.i)
      .map((x) => x.c);
  }

  private current(e: Ewma): number {
    const dt = Math.max(0, this.clock.now() - e.at);
    return e.value * Math.exp(-dt / DECAY_MS);
  }

  /** Mark a call as started; the returned function records its latency (time to first byte) when it ends. */
  begin(provider: string, model: string): (latencyMs: number | null) => void {
    const key = breakerKeys(provider, model)[1]; // `${provider}|${model}`, made once
    let e = this.latency.get(key);
    if (!e) {
      e = { value: 0, at: this.clock.now(), inFlight: 0 };
      this.latency.set(key, e);
    }
    const entry = e;
    entry.inFlight++;
    let done = false;
    return (ms) => {
      if (done) return;
      done = true;
      entry.inFlight--;
      if (ms === null) return;
      const decayed = this.current(entry);
      // peak-sensitive: a slower sample takes over at once, a faster one blends in
      entry.value = ms > decayed ? ms : decayed * 0.7 + ms * 0.3;
      entry.at = this.clock.now();
    };
  }

  latencyOf(provider: string, model: string): number | null {
    const e = this.latency.get(`${provider}|${model}`);
    return e ? this.current(e) : null;
  }
}

function unitHash(s: string): number {
  const h = createHash('sha256').update(s).digest();
  return (h.readUInt32BE(0) + 1) / 4294967297;
}
