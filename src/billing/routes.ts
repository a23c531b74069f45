import type { FastifyInstance } from 'fastify';
import { requireUser } from '../http/auth.js';
import { microsToUsd } from '../lib/money.js';
import type { BillingStore } from './store.js';

/** Extra fields for a user's balance (commerce: the trial's tokens and requests left). */
export type BalanceExtras = (userId: string) => Promise<Record<string, unknown>>;

export function billingRoutes(app: FastifyInstance, billing: BillingStore, extras?: BalanceExtras): void {
  app.get(
    '/user/balance',
    {
      schema: { tags: ['user'], summary: 'Credit balance of the calling key’s owner' },
      config: { auth: 'user' },
    },
    async (request) => {
      const p = requireUser(request);
      const b = await billing.balance(p.userId);
      const balance = b?.balance_micros ?? 0;
      const held = b?.held_micros ?? 0;
      const trial = b?.trial_balance_micros ?? 0;
      return {
        user_id: p.userId,
        credits: microsToUsd(balance),
        credits_micros: balance,
        trial_credits: microsToUsd(trial),
        trial_credits_micros: trial,
        held: microsToUsd(held),
        available: microsToUsd(balance + trial - held),
        status: b?.status ?? 'unknown',
        api_key_id: p.keyId,
        environment_tag: p.environment,
        ...(extras ? await extras(p.userId) : {}),
      };
    },
  );
}
