import type { LimitsConfig, LimitValues } from './config.js';
import type { PlanLimits } from './plan-limits.js';
import type { OverrideRow } from './store.js';

/** Admin-settable fields. */
export const OVERRIDE_FIELDS = [
  'requests_per_minute',
  'requests_per_hour',
  'requests_per_day',
  'tokens_per_minute',
  'tokens_per_hour',
  'tokens_per_day',
  'requests_per_month',
  'tokens_per_month',
  'concurrency',
] as const;
export type OverrideField = (typeof OVERRIDE_FIELDS)[number];

const FIELD_TO_VALUE: Record<OverrideField, keyof LimitValues> = {
  requests_per_minute: 'requestsPerMinute',
  requests_per_hour: 'requestsPerHour',
  requests_per_day: 'requestsPerDay',
  tokens_per_minute: 'tokensPerMinute',
  tokens_per_hour: 'tokensPerHour',
  tokens_per_day: 'tokensPerDay',
  requests_per_month: 'requestsPerMonth',
  tokens_per_month: 'tokensPerMonth',
  concurrency: 'concurrency',
};

const pick = (v: number | null | undefined, fallback: number | null): number | null =>
  v === undefined ? fallback : v;

/** The plan's limits as limit values; fields a plan does not define come from the DEFAULT_* config. */
export function fromPlan(plan: PlanLimits | null, cfg: LimitsConfig): LimitValues {
  const d = cfg.defaults;
  if (!plan) return { ...d };
  return {
    requestsPerMinute: pick(plan.requestsPerMinute, d.requestsPerMinute),
    requestsPerHour: d.requestsPerHour,
    requestsPerDay: plan.requestsPerDay,
    requestsPerMonth: plan.requestsPerMonth,
    tokensPerMinute: pick(plan.tokensPerMinute, d.tokensPerMinute),
    tokensPerHour: d.tokensPerHour,
    tokensPerDay: plan.tokensPerDay,
    tokensPerMonth: plan.tokensPerMonth,
    concurrency: plan.maxConcurrent,
  };
}

/** Test, staging and dev keys get half of every limit (at least 1). */
export function halve(v: LimitValues): LimitValues {
  const out = { ...v };
  for (const k of Object.keys(out) as (keyof LimitValues)[]) {
    const n = out[k];
    if (n !== null) out[k] = Math.max(1, Math.floor(n / 2));
  }
  return out;
}

/** An override's set fields replace the base; null fields keep it. */
export function applyOverride(base: LimitValues, o: OverrideRow | undefined | null): LimitValues {
  if (!o) return base;
  const out = { ...base };
  for (const f of OVERRIDE_FIELDS) {
    const v = o[f];
    if (v !== null && v !== undefined) out[FIELD_TO_VALUE[f]] = Number(v);
  }
  return out;
}

/** Limit values in the snake_case shape of the HTTP API. */
export function toJson(v: LimitValues) {
  return {
    requests_per_minute: v.requestsPerMinute,
    requests_per_hour: v.requestsPerHour,
    requests_per_day: v.requestsPerDay,
    requests_per_month: v.requestsPerMonth,
    tokens_per_minute: v.tokensPerMinute,
    tokens_per_hour: v.tokensPerHour,
    tokens_per_day: v.tokensPerDay,
    tokens_per_month: v.tokensPerMonth,
    concurrency: v.concurrency,
  };
}
