import { ConfigError } from '../config/error.js';
import { usdToMicros } from '../lib/money.js';
import { DEFAULT_PLANS, type Plan, parsePlans } from './plans.js';

export interface CreditPackage {
  id: string;
  name: string;
  priceMicros: number;
  creditsMicros: number;
}

/** Plans, trial, payments, referrals, scheduled jobs and e-mail (env + the config file's `plans`/`creditPackages`). */
export interface CommerceConfig {
  plans: Plan[];
  defaultPlanId: string;
  trial: {
    days: number;
    durationMs: number;
    creditsMicros: number;
    tokens: number;
    requests: number;
    autoStart: boolean;
  };
  stripe: {
    secretKey: string | null;
    webhookSecret: string | null;
    baseUrl: string | null;
    successUrl: string;
    cancelUrl: string;
  };
  topupMinMicros: number;
  topupMaxMicros: number;
  packages: CreditPackage[];
  referral: { rewardMicros: number; minPurchaseMicros: number; maxRewardsPerCode: number };
  /** Interval of commerce's jobs in the fleet's job runner (0: not scheduled, run only by `fleet.jobs.tick()`). */
  jobsIntervalMs: number;
  email: {
    smtpUrl: string | null;
    resendApiKey: string | null;
    resendBaseUrl: string | null;
    from: string;
    maxAttempts: number;
    retryBaseMs: number;
  };
}

type Env = Record<string, string | undefined>;

function num(env: Env, name: string, def: number, min: number, max: number, integer = false): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return def;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < min || n > max || (integer && !Number.isInteger(n)))
    throw new ConfigError(
      `${name} must be ${integer ? 'an integer' : 'a number'} between ${min} and ${max}, got "${raw}"`,
    );
  return n;
}

function bool(env: Env, name: string, def: boolean): boolean {
  const raw = env[name];
  if (raw === undefined || raw === '') return def;
  if (/^(1|true|yes|on)$/i.test(raw)) return true;
  if (/^(0|false|no|off)$/i.test(raw)) return false;
  throw new ConfigError(`${name} must be true or false, got "${raw}"`);
}

const DEFAULT_PACKAGES: CreditPackage[] = [
  { id: 'starter', name: '$10 of credits', priceMicros: 10_000_000, creditsMicros: 10_000_000 },
  { id: 'builder', name: '$50 of credits (+5%)', priceMicros: 50_000_000, creditsMicros: 52_500_000 },
  { id: 'scale', name: '$200 of credits (+10%)', priceMicros: 200_000_000, creditsMicros: 220_000_000 },
];

function parsePackages(raw: unknown): CreditPackage[] {
  if (raw === undefined) return DEFAULT_PACKAGES;
  if (!Array.isArray(raw)) throw new ConfigError('config file: creditPackages must be a list');
  return raw.map((p: any, i) => {
    if (typeof p?.id !== 'string' || typeof p.price_usd !== 'number' || typeof p.credits_usd !== 'number')
      throw new ConfigError(`config file: creditPackages[${i}] needs id, price_usd and credits_usd`);
    return {
      id: p.id,
      name: typeof p.name === 'string' ? p.name : p.id,
      priceMicros: usdToMicros(p.price_usd),
      creditsMicros: usdToMicros(p.credits_usd),
    };
  });
}

export function loadCommerceConfig(env: Env, file: Record<string, unknown>): CommerceConfig {
  const plans = file.plans === undefined ? DEFAULT_PLANS : parsePlans(file.plans);
  const defaultPlanId =
    env.DEFAULT_PLAN || (typeof file.defaultPlan === 'string' ? file.defaultPlan : 'free');
  if (!plans.some((p) => p.id === defaultPlanId))
    throw new ConfigError(`DEFAULT_PLAN names an unknown plan "${defaultPlanId}"`);
  const days = num(env, 'TRIAL_DAYS', 3, 0, 365);
  const appUrl = env.APP_URL || 'http://localhost:8000';
  return {
    plans,
    defaultPlanId,
    trial: {
      days,
      durationMs: Math.round(days * 86_400_000),
      creditsMicros: usdToMicros(num(env, 'TRIAL_CREDITS_USD', 10, 0, 1_000_000)),
      tokens: num(env, 'TRIAL_TOKENS', 100_000, 0, Number.MAX_SAFE_INTEGER, true),
      requests: num(env, 'TRIAL_REQUESTS', 1_000, 0, Number.MAX_SAFE_INTEGER, true),
      autoStart: bool(env, 'TRIAL_AUTO_START', false),
    },
    stripe: {
      secretKey: env.STRIPE_SECRET_KEY || null,
      webhookSecret: env.STRIPE_WEBHOOK_SECRET || null,
      baseUrl: env.STRIPE_BASE_URL || null,
      successUrl: env.STRIPE_SUCCESS_URL || `${appUrl}/billing/success?session_id={CHECKOUT_SESSION_ID}`,
      cancelUrl: env.STRIPE_CANCEL_URL || `${appUrl}/billing/cancel`,
    },
    topupMinMicros: usdToMicros(num(env, 'TOPUP_MIN_USD', 5, 0.5, 1_000_000)),
    topupMaxMicros: usdToMicros(num(env, 'TOPUP_MAX_USD', 10_000, 0.5, 1_000_000)),
    packages: parsePackages(file.creditPackages),
    referral: {
      rewardMicros: usdToMicros(num(env, 'REFERRAL_REWARD_USD', 10, 0, 1_000_000)),
      minPurchaseMicros: usdToMicros(num(env, 'REFERRAL_MIN_PURCHASE_USD', 10, 0, 1_000_000)),
      maxRewardsPerCode: num(env, 'REFERRAL_MAX_REWARDS', 10, 0, 1_000_000, true),
    },
    jobsIntervalMs: num(env, 'JOBS_INTERVAL_MS', 30_000, 0, 86_400_000, true),
    email: {
      smtpUrl: env.SMTP_URL || null,
      resendApiKey: env.RESEND_API_KEY || null,
      resendBaseUrl: env.RESEND_BASE_URL || null,
      from: env.EMAIL_FROM || 'Gatewayz <no-reply@localhost>',
      maxAttempts: num(env, 'EMAIL_MAX_ATTEMPTS', 8, 1, 100, true),
      retryBaseMs: num(env, 'EMAIL_RETRY_BASE_MS', 30_000, 1, 86_400_000, true),
    },
  };
}
