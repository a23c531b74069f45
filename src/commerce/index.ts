import type { FastifyInstance } from 'fastify';
import type { AuditSink } from '../audit/log.js';
import type { BillingStore } from '../billing/store.js';
import type { Db } from '../db/database.js';
import type { Jobs } from '../fleet/jobs.js';
import type { Guard, GuardRelease, InferenceCall } from '../inference/pipeline.js';
import { GatewayError } from '../lib/errors.js';
import { microsToUsd } from '../lib/money.js';
import type { PlanLimitsSource } from '../limits/plan-limits.js';
import { Outbox } from '../notify/outbox.js';
import { notifyRoutes } from '../notify/routes.js';
import { Notifier } from '../notify/service.js';
import { type MailTransport, makeTransport } from '../notify/transport.js';
import { couponAdminRoutes } from './admin-routes.js';
import type { CommerceConfig } from './config.js';
import { CouponsService } from './coupons.js';
import { paymentRoutes } from './payments/routes.js';
import { PaymentsService } from './payments/service.js';
import { makeStripe } from './payments/stripe.js';
import { StripeWebhooks } from './payments/webhook.js';
import { limitsOf, modelAllowed, type Plan, PlansService } from './plans.js';
import { ReferralsService } from './referrals.js';
import { commerceRoutes } from './routes.js';
import { trialCounters } from './trial-counters.js';
import { TrialsService } from './trials.js';

export interface CommerceDeps {
  db: Db;
  billing: BillingStore;
  config: CommerceConfig;
  appName: string;
  audit?: AuditSink | null;
  /** The fleet's leased jobs (src/fleet): trial expiry/reminders, plan credits and the outbox run there. */
  jobs: Pick<Jobs, 'every'>;
  /** Overrides the configured mail transport (tests). */
  transport?: MailTransport;
}

export interface Commerce {
  plans: PlansService;
  trials: TrialsService;
  coupons: CouponsService;
  referrals: ReferralsService;
  payments: PaymentsService;
  notifier: Notifier;
  outbox: Outbox;
  /** Pipeline guard: the plan's allowed models (add before rate limits). */
  modelGuard: Guard;
  /** Pipeline guard: trial caps and the low-balance alert (add after rate limits). */
  usageGuard: Guard;
  /** For the limits service: the plan limits of a user. */
  planLimits: PlanLimitsSource;
  assignPlan(userId: string, planId: string, now: number): Promise<{ previous: string }>;
  /** Fields GET /user/balance adds for a user with a trial: tokens and requests left, end date. */
  balanceExtras(userId: string): Promise<Record<string, unknown>>;
  /** Accounts calls this after creating a user: welcome mail, and the trial when TRIAL_AUTO_START is on. */
  userCreated(userId: string, now?: number): Promise<void>;
  /** Accounts calls this after creating an API key: the security mail. */
  keyCreated(userId: string, key: { id: string; name: string; prefix: string }, now?: number): Promise<void>;
  close(): Promise<void>;
}

/** Builds plans, trials, coupons, referrals, payments and notifications and installs their routes; the caller adds the guards. */
export function installCommerce(app: FastifyInstance, deps: CommerceDeps): Commerce {
  const { db, billing, config: cfg } = deps;
  const kdb = db.db;
  const transport = deps.transport ?? makeTransport(cfg.email, app.log);
  const outbox = new Outbox(
    kdb,
    transport,
    {
      from: cfg.email.from,
      appName: deps.appName,
      maxAttempts: cfg.email.maxAttempts,
      retryBaseMs: cfg.email.retryBaseMs,
    },
    app.log,
  );
  const notifier = new Notifier(kdb, outbox);
  const plans = new PlansService(kdb, cfg.plans, cfg.defaultPlanId);
  const trials = new TrialsService(
    kdb,
    db.dialect,
    billing,
    notifier,
    cfg.trial,
    trialCounters(db, billing.groupCommit),
  );
  const coupons = new CouponsService(kdb, billing, (u, trx) => plans.planOf(u, trx));
  const referrals = new ReferralsService(kdb, db.dialect, billing, cfg.referral);
  const stripe = cfg.stripe.secretKey ? makeStripe(cfg.stripe.secretKey, cfg.stripe.baseUrl) : null;
  const payments = new PaymentsService(
    kdb,
    plans,
    coupons,
    stripe,
    cfg,
    app.log,
    new StripeWebhooks(kdb, db.dialect, billing, plans, trials, coupons, referrals, notifier, cfg),
  );

  const assignPlan = async (userId: string, planId: string, now: number) => {
    const plan = plans.get(planId);
    if (!plan) throw new GatewayError(400, `Unknown plan "${planId}"`, { param: 'plan_id' });
    const user = await kdb.selectFrom('users').select('id').where('id', '=', userId).executeTakeFirst();
    if (!user) throw new GatewayError(404, 'No such user', { code: 'user_not_found', param: 'user_id' });
    const previous = await kdb.transaction().execute(async (trx) => {
      const prev = await plans.assign(
        userId,
        planId,
        { source: 'admin', now, scheduleCredits: plan.monthlyCreditsMicros > 0 },
        trx,
      );
      if (plan.id !== cfg.defaultPlanId) await trials.convert(userId, now, trx);
      if (prev !== planId)
        await notifier.notify(
          userId,
          'plan_changed',
          { previous_plan: plans.get(prev)?.name ?? prev, plan_name: plan.name },
          `plan_changed:${userId}:${now}`,
          now,
          trx,
        );
      return prev;
    });
    plans.invalidate(userId);
    return { previous };
  };

  /** Included monthly credits of admin-assigned plans (Stripe plans get theirs from invoices). */
  const planCredits = async (now: number) => {
    for (const row of await plans.dueCredits(now)) {
      const plan = plans.get(row.plan_id);
      const due = row.next_credit_at!;
      await kdb.transaction().execute(async (trx) => {
        if (!(await plans.advanceCredit(row.user_id, due, trx))) return;
        if (!plan || plan.monthlyCreditsMicros <= 0) return;
        await billing.post(
          {
            userId: row.user_id,
            kind: 'plan_credit',
            amount: plan.monthlyCreditsMicros,
            reference: `plan:${plan.id}:${due}`,
            idempotencyKey: `plan_credit:${row.user_id}:${due}`,
            description: `${plan.name} plan monthly credits`,
          },
          now,
          trx,
        );
      });
    }
  };

  const jobList = [
    { name: 'trial-expiry', run: (now: number) => trials.expireDue(now) },
    { name: 'trial-reminders', run: (now: number) => trials.remindDue(now) },
    { name: 'plan-credits', run: planCredits },
    { name: 'email-outbox', run: (now: number) => outbox.runOnce(now) },
  ];
  // One runner per job across the fleet; JOBS_INTERVAL_MS=0 leaves them to `fleet.jobs.tick()`.
  for (const j of jobList) deps.jobs.every(`commerce-${j.name}`, cfg.jobsIntervalMs, j.run);

  // The plan's allowed models: a restriction, checked before rate limits take a slot.
  const planAllows = (plan: Plan, call: InferenceCall): undefined => {
    if (!modelAllowed(plan, call.model))
      throw new GatewayError(403, `The model ${call.model} is not included in the ${plan.name} plan`, {
        code: 'model_not_in_plan',
        param: 'model',
      });
    return undefined;
  };
  // Both guards answer synchronously when what they read is cached (the common case): no promise.
  const modelGuard: Guard = {
    name: 'plan-models',
    check(call) {
      const userId = call.principal.userId;
      if (!userId) return undefined;
      const plan = plans.cachedPlanOf(userId);
      if (plan) return planAllows(plan, call);
      return plans.planOf(userId).then((p) => planAllows(p, call));
    },
  };
  // After rate limits: the trial's request/token caps; after settling, the low-balance alert.
  const afterUsage =
    (userId: string, trialDone: ((tokens: number) => Promise<void>) | undefined): GuardRelease =>
    (outcome) => {
      const u = outcome.usage;
      const alert = outcome.costMicros > 0 && notifier.mayAlertLowBalance(userId);
      if (!trialDone && !alert) return;
      return (async () => {
        if (trialDone) await trialDone(u ? u.promptTokens + u.completionTokens : 0);
        // The balance itself, not what is available: holds in flight (and a hold lease's unused part,
        // src/billing/hold-leases.ts) are money the user still has.
        if (alert) await notifier.checkLowBalance(userId, () => billing.funds(userId));
      })();
    };
  const usageGuard: Guard = {
    name: 'trial-and-balance',
    check(call) {
      const userId = call.principal.userId;
      if (!userId) return undefined;
      if (trials.knownInactive(userId)) return afterUsage(userId, undefined);
      return trials.admit(userId).then((trialDone) => afterUsage(userId, trialDone));
    },
  };

  const c: Commerce = {
    plans,
    trials,
    coupons,
    referrals,
    payments,
    notifier,
    outbox,
    modelGuard,
    usageGuard,
    planLimits: async (userId) => limitsOf(await plans.planOf(userId)),
    assignPlan,
    async balanceExtras(userId) {
      const t = await trials.get(userId);
      if (!t) return {};
      const s = await trials.status(userId, Date.now());
      return {
        trial: {
          is_active: s.is_active,
          status: s.status,
          remaining_credits: s.remaining_credits,
          remaining_tokens: s.remaining_tokens,
          remaining_requests: s.remaining_requests,
          end_date: s.end_date,
        },
      };
    },
    async userCreated(userId, now = Date.now()) {
      const u = await kdb
        .selectFrom('users')
        .select(['username', 'referral_code'])
        .where('id', '=', userId)
        .executeTakeFirst();
      await notifier.notify(
        userId,
        'welcome',
        { name: u?.username ?? null, referral_code: u?.referral_code ?? null },
        `welcome:${userId}`,
        now,
      );
      if (cfg.trial.autoStart) await trials.start(userId, now);
    },
    async keyCreated(userId, key, now = Date.now()) {
      await notifier.notify(
        userId,
        'api_key_created',
        { key_name: key.name, key_prefix: key.prefix, created_at: now },
        `api_key_created:${key.id}`,
        now,
      );
    },
    /** Call after the fleet's jobs have stopped (an outbox run may still be sending). */
    async close() {
      transport.close?.();
    },
  };

  commerceRoutes(app, c, deps.audit ?? null);
  couponAdminRoutes(app, c, deps.audit ?? null);
  paymentRoutes(app, payments);
  notifyRoutes(app, notifier);
  app.log.debug(
    { plans: cfg.plans.length, trialCredits: microsToUsd(cfg.trial.creditsMicros) },
    'commerce ready',
  );
  return c;
}
