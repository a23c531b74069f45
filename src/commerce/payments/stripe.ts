import type Stripe from 'stripe';
import { loadOptional } from '../../lib/optional.js';

/** The Stripe SDK client; STRIPE_BASE_URL points it at another host (a local test server or mock). */
export function makeStripe(secretKey: string, baseUrl: string | null): Stripe {
  const opts: ConstructorParameters<typeof Stripe>[1] = {
    maxNetworkRetries: 2,
    timeout: 20_000,
    telemetry: false,
  };
  if (baseUrl) {
    const u = new URL(baseUrl);
    opts.host = u.hostname;
    opts.port = u.port || (u.protocol === 'https:' ? 443 : 80);
    opts.protocol = u.protocol === 'http:' ? 'http' : 'https';
  }
  const mod = loadOptional<typeof Stripe & { default?: typeof Stripe }>('stripe');
  const StripeClient = mod.default ?? mod;
  return new StripeClient(secretKey, opts);
}

export type { Stripe };

/** Stripe amounts are integer cents; ours are micro-dollars. */
export const centsToMicros = (cents: number): number => Math.round(cents) * 10_000;
export const microsToCents = (micros: number): number => Math.round(micros / 10_000);
