import type { LimitsConfig } from './config.js';

/**
 * A plan's limits as the limits service consumes them. The commerce feature owns plans and plugs
 * its lookup in with `limits.setPlanSource(fn)`; null means "no limit" for that field.
 */
export interface PlanLimits {
  requestsPerDay: number | null;
  requestsPerMonth: number | null;
  tokensPerDay: number | null;
  tokensPerMonth: number | null;
  maxConcurrent: number | null;
  requestsPerMinute?: number | null;
  tokensPerMinute?: number | null;
}

/** The plan limits of a user, or null when the user has no plan (config defaults apply). */
export type PlanLimitsSource = (userId: string) => Promise<PlanLimits | null>;

/** Limits applied when a user has no plan: the DEFAULT_* environment variables. */
export function defaultPlanLimits(cfg: LimitsConfig): PlanLimits {
  const d = cfg.defaults;
  return {
    requestsPerDay: d.requestsPerDay,
    requestsPerMonth: d.requestsPerMonth,
    tokensPerDay: d.tokensPerDay,
    tokensPerMonth: d.tokensPerMonth,
    maxConcurrent: d.concurrency,
    requestsPerMinute: d.requestsPerMinute,
    tokensPerMinute: d.tokensPerMinute,
  };
}

/** The default source: every user gets the configured defaults. */
export function defaultPlanSource(cfg: LimitsConfig): PlanLimitsSource {
  const limits = defaultPlanLimits(cfg);
  return async () => limits;
}
