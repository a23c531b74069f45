import { randomBytes } from 'node:crypto';
import { GatewayError } from '../lib/errors.js';
import type { LimiterBackend } from './backend.js';

/**
 * Global cap on requests in flight per provider (PROVIDER_MAX_CONCURRENCY), across every instance
 * sharing the backend, to protect upstream accounts. The pipeline takes a slot around each
 * upstream attempt (routing's `UpstreamGate`); at the cap an attempt waits for a free slot up to
 * `waitMs`, then fails with 503 `provider_busy` before anything is sent upstream.
 * When the backend is unreachable the gate stays open: it protects upstreams, it never bills.
 */
export class ProviderGate {
  constructor(
    private readonly caps: Record<string, number>,
    private readonly backend: LimiterBackend,
    private readonly prefix: string,
    private readonly leaseTtlMs: number,
    private readonly onError: (e: unknown) => void = () => {},
    private readonly now: () => number = Date.now,
  ) {}

  /** The cap of a provider, or null when unlimited. */
  capOf(provider: string): number | null {
    return this.caps[provider] ?? this.caps['*'] ?? null;
  }

  /** A release when a slot was taken (or none is needed); null when the provider is at its cap. */
  async acquire(provider: string): Promise<(() => void) | null> {
    const cap = this.capOf(provider);
    if (cap === null) return () => {};
    const key = `${this.prefix}provider:${provider}:inflight`;
    const id = randomBytes(8).toString('hex');
    const now = this.now();
    try {
      const r = await this.backend.check({
        now,
        counters: [],
        leases: [{ key, limit: cap, id, expiresAt: now + this.leaseTtlMs }],
      });
      if (r.denied >= 0) return null;
    } catch (e) {
      this.onError(e);
      return () => {};
    }
    let done = false;
    return () => {
      if (done) return;
      done = true;
      this.backend.settle([], [{ key, id }]).catch(this.onError);
    };
  }

  /** Take a slot, waiting up to `waitMs` for one; throws 503 when none frees up. */
  async wait(provider: string, waitMs: number): Promise<() => void> {
    const deadline = Date.now() + waitMs;
    let pause = 5;
    for (;;) {
      const release = await this.acquire(provider);
      if (release) return release;
      if (Date.now() + pause > deadline)
        throw new GatewayError(503, `Provider ${provider} is at its concurrency limit; try again shortly`, {
          type: 'provider_busy',
          code: 'provider_concurrency_exceeded',
          headers: { 'retry-after': '1' },
        });
      await new Promise((r) => setTimeout(r, pause));
      pause = Math.min(pause * 2, 50);
    }
  }

  get enabled(): boolean {
    return Object.keys(this.caps).length > 0;
  }
}
