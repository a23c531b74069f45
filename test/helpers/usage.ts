import type { UsageRecord } from '../../src/billing/store.js';

/** A usage record of one chat request (one prompt and one completion token) costing `cost` µ$. */
export function usageRecord(userId: string, requestId: string, cost: number): UsageRecord {
  return {
    request_id: requestId,
    user_id: userId,
    key_id: null,
    endpoint: 'chat',
    model: 'm',
    provider: 'p',
    prompt_tokens: 1,
    completion_tokens: 1,
    cached_tokens: 0,
    reasoning_tokens: 0,
    cost_micros: cost,
    latency_ms: 1,
    status: 'ok',
    stream: 0,
    app: null,
    created_at: Date.now(),
  };
}
