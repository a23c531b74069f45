import type { Guard } from '../inference/pipeline.js';
import { GatewayError } from '../lib/errors.js';
import { globMatches } from './restrictions.js';
import type { AccountsService } from './service.js';

/** Does an allowed_models entry admit `model`? Matches the full id or the id without its provider prefix. */
export function modelAllowed(patterns: string[], model: string): boolean {
  const bare = model.includes('/') ? model.slice(model.indexOf('/') + 1) : model;
  return patterns.some((p) => globMatches(p, model) || globMatches(p, bare));
}

/**
 * The key restrictions that need the model and the cost: allowed models and the per-key spend
 * cap. Read from the cached principal and the in-memory spend counter, no database read.
 */
export function keyRestrictionsGuard(accounts: AccountsService): Guard {
  return {
    name: 'key-restrictions',
    check(call) {
      const k = call.principal.key;
      const keyId = call.principal.keyId;
      if (!k || !keyId) return undefined;
      if (k.allowedModels && !modelAllowed(k.allowedModels, call.model))
        throw new GatewayError(403, `This API key may not use the model '${call.model}'`, {
          code: 'model_not_allowed',
          param: 'model',
        });
      if (k.maxSpendMicros !== null && accounts.spentOf(keyId) >= k.maxSpendMicros)
        throw new GatewayError(402, 'This API key has reached its max_spend_usd', {
          type: 'insufficient_credits',
          code: 'key_spend_limit_reached',
        });
      return ({ costMicros }) => accounts.addSpend(keyId, costMicros);
    },
  };
}
