import type { FastifyInstance } from 'fastify';
import { requireUser } from '../http/auth.js';
import { microsToUsd } from '../lib/money.js';
import type { BillingStore } from './store.js';

export function billingRoutes(app: FastifyInstance, billing: BillingStore): void {
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
      return {
        user_id: p.userId,
        credits: microsToUsd(balance),
        credits_micros: balance,
        held: microsToUsd(held),
        available: microsToUsd(balance - held),
        status: b?.status ?? 'unknown',
        api_key_id: p.keyId,
        environment_tag: p.environment,
      };
    },
  );
}
