import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import type { AccountsService } from '../accounts/service.js';
import type { AuditSink } from '../audit/log.js';
import { requireUser } from '../http/auth.js';
import { badRequest, notFound } from '../lib/errors.js';
import { OVERRIDE_FIELDS, toJson } from './resolve.js';
import type { LimitsService, SubjectLimits } from './service.js';
import type { LimitsStore, OverrideRow } from './store.js';
import { periodStart, position } from './windows.js';

const Limit = Type.Union([Type.Integer({ minimum: 0, maximum: 1e15 }), Type.Null()]);

function overrideJson(o: OverrideRow | null) {
  if (!o) return null;
  const out: Record<string, unknown> = {};
  for (const f of OVERRIDE_FIELDS) out[f] = o[f] === null ? null : Number(o[f]);
  return {
    subject_type: o.subject_type,
    subject_id: o.subject_id,
    user_id: o.user_id,
    ...out,
    reason: o.reason,
    updated_by: o.updated_by,
    updated_at: new Date(Number(o.updated_at)).toISOString(),
  };
}

function subjectJson(s: SubjectLimits) {
  return { limits: toJson(s.limits), override: overrideJson(s.override) };
}

export function limitsRoutes(
  app: FastifyInstance,
  deps: {
    limits: LimitsService;
    store: LimitsStore;
    accounts: AccountsService;
    audit?: AuditSink | null;
  },
): void {
  const { limits, store, accounts } = deps;

  app.post(
    '/admin/rate-limits',
    {
      schema: {
        tags: ['admin'],
        summary: 'Set the rate limits of a user or a key (null or absent: the plan value)',
        body: Type.Object(
          {
            user_id: Type.Optional(Type.String({ minLength: 1, maxLength: 100 })),
            key_id: Type.Optional(Type.String({ minLength: 1, maxLength: 100 })),
            requests_per_minute: Type.Optional(Limit),
            requests_per_hour: Type.Optional(Limit),
            requests_per_day: Type.Optional(Limit),
            tokens_per_minute: Type.Optional(Limit),
            tokens_per_hour: Type.Optional(Limit),
            tokens_per_day: Type.Optional(Limit),
            requests_per_month: Type.Optional(Limit),
            tokens_per_month: Type.Optional(Limit),
            concurrency: Type.Optional(Limit),
            reason: Type.Optional(Type.String({ maxLength: 500 })),
          },
          { additionalProperties: false },
        ),
      },
      config: { auth: 'admin', permission: 'rate_limits:write' },
    },
    async (request) => {
      const b = request.body as Record<string, any>;
      if ((b.user_id ? 1 : 0) + (b.key_id ? 1 : 0) !== 1)
        throw badRequest('Give exactly one of user_id or key_id', b.user_id ? 'key_id' : 'user_id');
      let userId: string;
      if (b.key_id) {
        const k = await accounts.store.findKey(b.key_id);
        if (!k) throw notFound('No such key', 'key_not_found', 'key_id');
        userId = k.user_id;
      } else {
        const u = await accounts.store.findUser(b.user_id);
        if (!u) throw notFound('No such user', 'user_not_found', 'user_id');
        userId = u.id;
      }
      const now = Date.now();
      const p = request.principal;
      const row: OverrideRow = {
        subject_type: b.key_id ? 'key' : 'user',
        subject_id: b.key_id ?? userId,
        user_id: userId,
        requests_per_minute: b.requests_per_minute ?? null,
        requests_per_hour: b.requests_per_hour ?? null,
        requests_per_day: b.requests_per_day ?? null,
        tokens_per_minute: b.tokens_per_minute ?? null,
        tokens_per_hour: b.tokens_per_hour ?? null,
        tokens_per_day: b.tokens_per_day ?? null,
        requests_per_month: b.requests_per_month ?? null,
        tokens_per_month: b.tokens_per_month ?? null,
        concurrency: b.concurrency ?? null,
        reason: b.reason ?? null,
        updated_by: p?.kind === 'admin' ? 'admin_key' : `user:${p?.userId}`,
        created_at: now,
        updated_at: now,
      };
      const before = await store.find(row.subject_type as 'user' | 'key', row.subject_id);
      await store.upsert(row);
      await limits.invalidate();
      await deps.audit?.recordRequest(request, {
        userId,
        action: 'rate_limits.set',
        resourceType: row.subject_type === 'key' ? 'api_key' : 'user',
        resourceId: row.subject_id,
        details: { before: overrideJson(before ?? null), after: overrideJson(row), reason: row.reason },
      });
      request.log.info(
        { audit: 'rate_limits.set', subject: row.subject_id, by: row.updated_by },
        'rate limits changed',
      );
      const saved = (await store.find(row.subject_type as 'user' | 'key', row.subject_id)) ?? row;
      return { success: true, override: overrideJson(saved) };
    },
  );

  app.get(
    '/admin/rate-limits',
    {
      schema: {
        tags: ['admin'],
        summary:
          'List rate-limit overrides (filter by user); with user_id or key_id also the limits in force',
        querystring: Type.Object(
          {
            user_id: Type.Optional(Type.String({ maxLength: 100 })),
            key_id: Type.Optional(Type.String({ maxLength: 100 })),
            limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500, default: 100 })),
            offset: Type.Optional(Type.Integer({ minimum: 0, default: 0 })),
          },
          { additionalProperties: false },
        ),
      },
      config: { auth: 'admin', permission: 'rate_limits:read' },
    },
    async (request) => {
      const q = request.query as { user_id?: string; key_id?: string; limit: number; offset: number };
      let userId = q.user_id;
      let effective: Record<string, unknown> | undefined;
      if (q.key_id) {
        const k = await accounts.store.findKey(q.key_id);
        if (!k) throw notFound('No such key', 'key_not_found', 'key_id');
        userId = k.user_id;
        const kl = await limits.keyLimits({
          kind: 'key',
          userId: k.user_id,
          keyId: k.id,
          role: 'user',
          environment: k.environment as 'live',
          key: null,
        });
        effective = kl ? subjectJson(kl) : subjectJson(await limits.userLimits(k.user_id));
      } else if (userId) {
        effective = subjectJson(await limits.userLimits(userId));
      }
      const rows = await store.list({ userId, limit: q.limit ?? 100, offset: q.offset ?? 0 });
      return {
        data: rows.map(overrideJson),
        ...(effective ? { effective } : {}),
        limit: q.limit ?? 100,
        offset: q.offset ?? 0,
      };
    },
  );

  app.get(
    '/user/rate-limits',
    {
      schema: {
        tags: ['limits'],
        summary: "The caller's rate limits (user and key) and their current usage",
      },
      config: { auth: 'user' },
    },
    async (request) => {
      const p = requireUser(request);
      const user = await limits.userLimits(p.userId);
      const key = await limits.keyLimits(p);
      const usageOf = async (s: SubjectLimits) => {
        const u = await limits.usage(s).catch(() => null);
        if (!u) return { unavailable: true as const }; // the limiter backend is down (see /health)
        return {
          windows: u.windows.map((w) => ({
            limit: `${w.dim}_per_${w.window}`,
            max: w.limit,
            used: w.used,
            remaining: Math.max(0, w.limit - w.used),
            reset_ms: w.resetMs,
          })),
          in_flight: u.inFlight,
        };
      };
      return {
        enabled: limits.config.enabled,
        backend: limits.backend.kind,
        environment: p.environment,
        user: { ...subjectJson(user), usage: await usageOf(user) },
        key: key
          ? { key_id: key.id, ...subjectJson(key), usage: await usageOf(key) }
          : { key_id: p.keyId, same_as_user: true },
      };
    },
  );

  app.get(
    '/user/plan/usage',
    {
      schema: {
        tags: ['limits'],
        summary: 'Usage today and this month (UTC) against the plan limits, remaining, reset times',
      },
      config: { auth: 'user' },
    },
    async (request) => {
      const p = requireUser(request);
      const user = await limits.userLimits(p.userId);
      const now = Date.now();
      const period = async (w: 'day' | 'month') => {
        const used = await store.usageSince(p.userId, periodStart(w, now));
        const reqLimit = w === 'day' ? user.limits.requestsPerDay : user.limits.requestsPerMonth;
        const tokLimit = w === 'day' ? user.limits.tokensPerDay : user.limits.tokensPerMonth;
        return {
          requests: {
            used: used.requests,
            limit: reqLimit,
            remaining: reqLimit === null ? null : Math.max(0, reqLimit - used.requests),
          },
          tokens: {
            used: used.tokens,
            limit: tokLimit,
            remaining: tokLimit === null ? null : Math.max(0, tokLimit - used.tokens),
          },
          period_start: new Date(periodStart(w, now)).toISOString(),
          resets_at: new Date(position(w, now).periodEnd).toISOString(),
        };
      };
      const inFlight =
        user.limits.concurrency === null
          ? null
          : await limits
              .usage(user)
              .then((u) => u.inFlight ?? 0)
              .catch(() => null);
      return {
        user_id: p.userId,
        plan: user.plan
          ? {
              requests_per_day: user.plan.requestsPerDay,
              requests_per_month: user.plan.requestsPerMonth,
              tokens_per_day: user.plan.tokensPerDay,
              tokens_per_month: user.plan.tokensPerMonth,
              max_concurrent_requests: user.plan.maxConcurrent,
            }
          : null,
        limits: toJson(user.limits),
        today: await period('day'),
        month: await period('month'),
        concurrency: { limit: user.limits.concurrency, in_flight: inFlight },
      };
    },
  );
}
