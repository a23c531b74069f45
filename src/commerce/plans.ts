import type { Kysely } from 'kysely';
import { ConfigError } from '../config/error.js';
import type { Database, UserPlansTable } from '../db/schema.js';
import { microsToUsd, usdToMicros } from '../lib/money.js';
import type { PlanLimits } from '../limits/plan-limits.js';

/** A plan as the operator defines it (config file `plans`); money in micro-dollars. */
export interface Plan {
  id: string;
  name: string;
  description: string;
  priceMonthlyMicros: number;
  priceYearlyMicros: number;
  /** Credits granted each billing month. */
  monthlyCreditsMicros: number;
  limits: PlanLimits;
  /** Model ids or prefixes ending in `*` (`openai/*`); `*` = all. */
  allowedModels: string[];
  features: string[];
  /** Stripe price ids that map to this plan (subscriptions changed in Stripe's dashboard). */
  stripePriceIds: string[];
}

const lim = (
  requestsPerDay: number | null,
  requestsPerMonth: number | null,
  tokensPerDay: number | null,
  tokensPerMonth: number | null,
  maxConcurrent: number | null,
): PlanLimits => ({ requestsPerDay, requestsPerMonth, tokensPerDay, tokensPerMonth, maxConcurrent });

/** Seeded examples; the operator replaces them with `plans` in the config file. */
export const DEFAULT_PLANS: Plan[] = [
  {
    id: 'free',
    name: 'Free',
    description: 'Pay as you go with purchased credits',
    priceMonthlyMicros: 0,
    priceYearlyMicros: 0,
    monthlyCreditsMicros: 0,
    // No limits of its own: the DEFAULT_* limits (src/limits) apply.
    limits: lim(null, null, null, null, null),
    allowedModels: ['*'],
    features: ['basic_models', 'community_support'],
    stripePriceIds: [],
  },
  {
    id: 'dev',
    name: 'Developer',
    description: 'For individual developers',
    priceMonthlyMicros: 20_000_000,
    priceYearlyMicros: 200_000_000,
    monthlyCreditsMicros: 20_000_000,
    limits: lim(10_000, 200_000, 5_000_000, 100_000_000, 20),
    allowedModels: ['*'],
    features: ['all_models', 'email_support', 'usage_analytics'],
    stripePriceIds: [],
  },
  {
    id: 'team',
    name: 'Team',
    description: 'For teams shipping AI features',
    priceMonthlyMicros: 100_000_000,
    priceYearlyMicros: 1_000_000_000,
    monthlyCreditsMicros: 110_000_000,
    limits: lim(100_000, 2_000_000, 50_000_000, 1_000_000_000, 100),
    allowedModels: ['*'],
    features: ['all_models', 'priority_support', 'usage_analytics', 'team_keys'],
    stripePriceIds: [],
  },
  {
    id: 'enterprise',
    name: 'Enterprise',
    description: 'Custom limits and support',
    priceMonthlyMicros: 1_000_000_000,
    priceYearlyMicros: 10_000_000_000,
    monthlyCreditsMicros: 1_100_000_000,
    limits: lim(null, null, null, null, 1_000),
    allowedModels: ['*'],
    features: ['all_models', 'dedicated_support', 'sla', 'usage_analytics', 'team_keys', 'audit_export'],
    stripePriceIds: [],
  },
];

const optInt = (v: unknown, where: string): number | null => {
  if (v === undefined || v === null) return null;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0)
    throw new ConfigError(`config file: ${where} must be a non-negative integer or null`);
  return v;
};
const usd = (v: unknown, where: string): number => {
  if (v === undefined) return 0;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0)
    throw new ConfigError(`config file: ${where} must be a non-negative number of USD`);
  return usdToMicros(v);
};

/** Plans from the config file (snake_case, USD) → Plan, with precise errors. */
export function parsePlans(raw: unknown): Plan[] {
  if (!Array.isArray(raw) || raw.length === 0)
    throw new ConfigError('config file: plans must be a non-empty list');
  const seen = new Set<string>();
  return raw.map((p: any, i) => {
    const at = `plans[${i}]`;
    if (typeof p?.id !== 'string' || !/^[a-z0-9_-]{1,64}$/.test(p.id))
      throw new ConfigError(`config file: ${at}.id must be a lowercase identifier`);
    if (seen.has(p.id)) throw new ConfigError(`config file: plan "${p.id}" is defined twice`);
    seen.add(p.id);
    const l = p.limits ?? {};
    return {
      id: p.id,
      name: typeof p.name === 'string' ? p.name : p.id,
      description: typeof p.description === 'string' ? p.description : '',
      priceMonthlyMicros: usd(p.price_monthly_usd, `${at}.price_monthly_usd`),
      priceYearlyMicros: usd(p.price_yearly_usd, `${at}.price_yearly_usd`),
      monthlyCreditsMicros: usd(p.monthly_credits_usd, `${at}.monthly_credits_usd`),
      limits: {
        requestsPerDay: optInt(l.daily_request_limit, `${at}.limits.daily_request_limit`),
        requestsPerMonth: optInt(l.monthly_request_limit, `${at}.limits.monthly_request_limit`),
        tokensPerDay: optInt(l.daily_token_limit, `${at}.limits.daily_token_limit`),
        tokensPerMonth: optInt(l.monthly_token_limit, `${at}.limits.monthly_token_limit`),
        maxConcurrent: optInt(l.max_concurrent_requests, `${at}.limits.max_concurrent_requests`),
      },
      allowedModels: Array.isArray(p.allowed_models) ? p.allowed_models.map(String) : ['*'],
      features: Array.isArray(p.features) ? p.features.map(String) : [],
      stripePriceIds: Array.isArray(p.stripe_price_ids) ? p.stripe_price_ids.map(String) : [],
    };
  });
}

/** A plan that sets no limit at all defers to the limits feature's DEFAULT_* configuration. */
export const limitsOf = (plan: Plan): PlanLimits | null =>
  Object.values(plan.limits).every((v) => v === null || v === undefined) ? null : plan.limits;

export const modelAllowed = (plan: Plan, model: string): boolean =>
  plan.allowedModels.some(
    (m) => m === '*' || m === model || (m.endsWith('*') && model.startsWith(m.slice(0, -1))),
  );

/** JSON shape of a plan at the edge. */
export function planJson(p: Plan) {
  return {
    id: p.id,
    name: p.name,
    description: p.description,
    price_per_month: microsToUsd(p.priceMonthlyMicros),
    price_per_year: microsToUsd(p.priceYearlyMicros),
    monthly_credits: microsToUsd(p.monthlyCreditsMicros),
    daily_request_limit: p.limits.requestsPerDay,
    monthly_request_limit: p.limits.requestsPerMonth,
    daily_token_limit: p.limits.tokensPerDay,
    monthly_token_limit: p.limits.tokensPerMonth,
    max_concurrent_requests: p.limits.maxConcurrent,
    allowed_models: p.allowedModels,
    features: p.features,
  };
}

export type UserPlanRow = UserPlansTable;
const MONTH_MS = 30 * 86_400_000;

/**
 * Plans by id and the plan each user holds. Lookups on the hot path (limits, allowed models)
 * are cached in memory for a short time.
 */
export class PlansService {
  private readonly byId: Map<string, Plan>;
  private readonly cache = new Map<string, { planId: string; at: number }>();
  private readonly listeners: Array<(userId: string) => void> = [];

  constructor(
    private readonly db: Kysely<Database>,
    readonly plans: Plan[],
    readonly defaultPlanId: string,
    private readonly cacheTtlMs = 2_000,
  ) {
    this.byId = new Map(plans.map((p) => [p.id, p]));
  }

  get(id: string): Plan | undefined {
    return this.byId.get(id);
  }

  defaultPlan(): Plan {
    return this.byId.get(this.defaultPlanId)!;
  }

  byStripePrice(priceId: string): Plan | undefined {
    return this.plans.find((p) => p.stripePriceIds.includes(priceId));
  }

  async row(userId: string, trx: Kysely<Database> = this.db): Promise<UserPlanRow | undefined> {
    return trx.selectFrom('user_plans').selectAll().where('user_id', '=', userId).executeTakeFirst();
  }

  /** The user's plan when it is in the cache and fresh (the guards' synchronous path); else undefined. */
  cachedPlanOf(userId: string): Plan | undefined {
    const hit = this.cache.get(userId);
    if (!hit || Date.now() - hit.at >= this.cacheTtlMs) return undefined;
    return this.byId.get(hit.planId) ?? this.defaultPlan();
  }

  /** The plan a user is on (the default plan when none is assigned or it was cancelled). */
  async planOf(userId: string, trx: Kysely<Database> = this.db): Promise<Plan> {
    const cached = this.cachedPlanOf(userId);
    if (cached) return cached;
    const now = Date.now();
    // Inside a transaction, read through it (SQLite has one connection: another read would wait forever).
    const r = await this.row(userId, trx);
    const planId = r && r.status !== 'canceled' ? r.plan_id : this.defaultPlanId;
    if (this.cache.size > 50_000) this.cache.clear();
    this.cache.set(userId, { planId, at: now });
    return this.byId.get(planId) ?? this.defaultPlan();
  }

  invalidate(userId: string): void {
    this.cache.delete(userId);
    for (const l of this.listeners) l(userId);
  }

  /** Called when a user's plan may have changed (the limits service drops its cached limits). */
  onChange(listener: (userId: string) => void): void {
    this.listeners.push(listener);
  }

  /** Put a user on a plan (admin or Stripe). Returns the previous plan id. */
  async assign(
    userId: string,
    planId: string,
    opts: {
      source: 'admin' | 'stripe';
      now: number;
      interval?: 'month' | 'year';
      subscriptionId?: string | null;
      periodEnd?: number | null;
      /** Included monthly credits come from Stripe invoices (false) or the scheduler (true). */
      scheduleCredits: boolean;
    },
    trx: Kysely<Database> = this.db,
  ): Promise<string> {
    const prev = await this.row(userId, trx);
    const values = {
      plan_id: planId,
      source: opts.source,
      status: 'active',
      interval: opts.interval ?? 'month',
      stripe_subscription_id: opts.subscriptionId ?? null,
      pending_plan_id: null,
      cancel_at_period_end: 0,
      current_period_start: opts.now,
      current_period_end: opts.periodEnd ?? null,
      next_credit_at: opts.scheduleCredits ? opts.now : null,
      updated_at: opts.now,
    };
    if (prev) await trx.updateTable('user_plans').set(values).where('user_id', '=', userId).execute();
    else
      await trx
        .insertInto('user_plans')
        .values({ user_id: userId, created_at: opts.now, ...values })
        .execute();
    this.invalidate(userId);
    return prev && prev.status !== 'canceled' ? prev.plan_id : this.defaultPlanId;
  }

  /** Rows whose included monthly credit is due (admin-assigned paid plans). */
  dueCredits(now: number, limit = 200) {
    return this.db
      .selectFrom('user_plans')
      .selectAll()
      .where('status', '=', 'active')
      .where('next_credit_at', 'is not', null)
      .where('next_credit_at', '<=', now)
      .limit(limit)
      .execute();
  }

  /** Move next_credit_at forward from `from` with one conditional statement; false if another run did it. */
  async advanceCredit(userId: string, from: number, trx: Kysely<Database>): Promise<boolean> {
    const r = await trx
      .updateTable('user_plans')
      .set({ next_credit_at: from + MONTH_MS })
      .where('user_id', '=', userId)
      .where('next_credit_at', '=', from)
      .executeTakeFirst();
    return Number(r.numUpdatedRows) === 1;
  }
}
