import { Type } from '@sinclair/typebox';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { AuditSink } from '../audit/log.js';
import { requireUser } from '../http/auth.js';
import { GatewayError } from '../lib/errors.js';
import { microsToUsd } from '../lib/money.js';
import type { Commerce } from './index.js';
import { limitsOf, planJson } from './plans.js';

const Id = Type.Object({ id: Type.String({ minLength: 1, maxLength: 100 }) });

/** Plans, trials, referrals and coupon redemption (user side). */
export function commerceRoutes(app: FastifyInstance, c: Commerce, audit: AuditSink | null): void {
  app.get(
    '/plans',
    { schema: { tags: ['plans'], summary: 'Plans on offer' }, config: { auth: 'public' } },
    async () => ({ plans: c.plans.plans.map(planJson), default_plan: c.plans.defaultPlanId }),
  );
  app.get(
    '/plans/:id',
    { schema: { tags: ['plans'], summary: 'One plan', params: Id }, config: { auth: 'public' } },
    async (request) => {
      const p = c.plans.get((request.params as { id: string }).id);
      if (!p) throw new GatewayError(404, 'No such plan', { code: 'plan_not_found', param: 'id' });
      return planJson(p);
    },
  );
  const userPlan = async (userId: string) => {
    const row = await c.plans.row(userId);
    const plan = await c.plans.planOf(userId);
    return {
      user_id: userId,
      plan_id: plan.id,
      plan_name: plan.name,
      status: row?.status ?? 'default',
      source: row?.source ?? 'default',
      pending_plan_id: row?.pending_plan_id ?? null,
      cancel_at_period_end: row?.cancel_at_period_end === 1,
      current_period_start: row ? new Date(row.current_period_start).toISOString() : null,
      current_period_end: row?.current_period_end ? new Date(row.current_period_end).toISOString() : null,
      plan: planJson(plan),
    };
  };
  app.get(
    '/user/plan',
    { schema: { tags: ['plans'], summary: 'The caller’s plan' }, config: { auth: 'user' } },
    async (request) => userPlan(requireUser(request).userId),
  );
  app.get(
    '/user/plan/entitlements',
    {
      schema: { tags: ['plans'], summary: 'What the caller’s plan and trial allow' },
      config: { auth: 'user' },
    },
    async (request) => {
      const { userId } = requireUser(request);
      const plan = await c.plans.planOf(userId);
      const trial = await c.trials.status(userId, Date.now());
      return {
        user_id: userId,
        plan_id: plan.id,
        daily_request_limit: plan.limits.requestsPerDay,
        monthly_request_limit: plan.limits.requestsPerMonth,
        daily_token_limit: plan.limits.tokensPerDay,
        monthly_token_limit: plan.limits.tokensPerMonth,
        max_concurrent_requests: plan.limits.maxConcurrent,
        // 'defaults': the plan sets no limits, so the DEFAULT_* limits apply (GET /user/rate-limits shows them).
        limits_source: limitsOf(plan) ? 'plan' : 'defaults',
        allowed_models: plan.allowedModels,
        features: plan.features,
        monthly_credits: microsToUsd(plan.monthlyCreditsMicros),
        trial,
      };
    },
  );
  app.post(
    '/admin/assign-plan',
    {
      schema: {
        tags: ['admin'],
        summary: 'Put a user on a plan (audited)',
        body: Type.Object(
          {
            user_id: Type.String({ minLength: 1, maxLength: 100 }),
            plan_id: Type.String({ minLength: 1, maxLength: 64 }),
            reason: Type.Optional(Type.String({ maxLength: 500 })),
          },
          { additionalProperties: false },
        ),
      },
      config: { auth: 'admin', permission: 'plans:assign' },
    },
    async (request) => {
      const b = request.body as { user_id: string; plan_id: string; reason?: string };
      const r = await c.assignPlan(b.user_id, b.plan_id, Date.now());
      await audit?.recordRequest(request, {
        userId: b.user_id,
        action: 'plan.assign',
        resourceType: 'user_plan',
        resourceId: b.user_id,
        details: { plan_id: b.plan_id, previous_plan_id: r.previous, reason: b.reason ?? null },
      });
      return { success: true, user_id: b.user_id, plan_id: b.plan_id, previous_plan_id: r.previous };
    },
  );

  const startTrial = async (request: FastifyRequest) => {
    const { userId } = requireUser(request);
    const r = await c.trials.start(userId, Date.now());
    return { started: r.created, ...(await c.trials.status(userId, Date.now())) };
  };
  app.post(
    '/trials/start',
    {
      schema: {
        tags: ['trials'],
        summary: 'Start the free trial (once per account; repeat calls return it)',
      },
      config: { auth: 'user' },
    },
    startTrial,
  );
  for (const url of ['/trials/status', '/trial/status'])
    app.get(
      url,
      { schema: { tags: ['trials'], summary: 'Trial status and what is left' }, config: { auth: 'user' } },
      async (request) => c.trials.status(requireUser(request).userId, Date.now()),
    );

  app.get(
    '/referral/code',
    { schema: { tags: ['referrals'], summary: 'The caller’s referral code' }, config: { auth: 'user' } },
    async (request) => {
      const code = await c.referrals.code(requireUser(request).userId);
      return { referral_code: code };
    },
  );
  app.get(
    '/referral/stats',
    {
      schema: { tags: ['referrals'], summary: 'Referrals and rewards of the caller’s code' },
      config: { auth: 'user' },
    },
    async (request) => c.referrals.stats(requireUser(request).userId),
  );
  app.post(
    '/referral/link',
    {
      schema: {
        tags: ['referrals'],
        summary: 'Link the caller to a referrer (before the first purchase; once)',
        body: Type.Object(
          { code: Type.String({ minLength: 1, maxLength: 64 }) },
          { additionalProperties: false },
        ),
      },
      config: { auth: 'user' },
    },
    async (request) => {
      const r = await c.referrals.link(requireUser(request).userId, (request.body as { code: string }).code);
      return { success: true, ...r };
    },
  );

  app.post(
    '/coupons/redeem',
    {
      schema: {
        tags: ['coupons'],
        summary: 'Redeem a credit coupon',
        body: Type.Object(
          { code: Type.String({ minLength: 1, maxLength: 64 }) },
          { additionalProperties: false },
        ),
      },
      config: { auth: 'user' },
    },
    async (request) =>
      c.coupons.redeem(requireUser(request).userId, (request.body as { code: string }).code, Date.now()),
  );
  app.get(
    '/coupons/history',
    { schema: { tags: ['coupons'], summary: 'The caller’s coupon redemptions' }, config: { auth: 'user' } },
    async (request) => ({ redemptions: await c.coupons.history(requireUser(request).userId) }),
  );
}
