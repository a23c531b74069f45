import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import type { AuditSink } from '../audit/log.js';
import { GatewayError } from '../lib/errors.js';
import { usdToMicros } from '../lib/money.js';
import { type CouponInput, couponJson } from './coupons.js';
import type { Commerce } from './index.js';

const Fields = {
  value: Type.Number({
    exclusiveMinimum: 0,
    maximum: 1_000_000,
    description: 'USD for credit/fixed; percent (0-100] for percent',
  }),
  user_id: Type.Optional(Type.Union([Type.String({ minLength: 1, maxLength: 100 }), Type.Null()])),
  valid_from: Type.Optional(Type.Union([Type.String({ format: 'date-time' }), Type.Null()])),
  valid_until: Type.Optional(Type.Union([Type.String({ format: 'date-time' }), Type.Null()])),
  max_uses: Type.Optional(Type.Union([Type.Integer({ minimum: 1 }), Type.Null()])),
  once_per_user: Type.Optional(Type.Boolean()),
  new_users_only: Type.Optional(Type.Boolean()),
  plan_ids: Type.Optional(
    Type.Union([Type.Array(Type.String({ minLength: 1 }), { minItems: 1 }), Type.Null()]),
  ),
  is_active: Type.Optional(Type.Boolean()),
  description: Type.Optional(Type.Union([Type.String({ maxLength: 500 }), Type.Null()])),
};
const Create = Type.Object(
  {
    code: Type.String({ minLength: 3, maxLength: 64 }),
    kind: Type.Union([Type.Literal('credit'), Type.Literal('percent'), Type.Literal('fixed')]),
    ...Fields,
  },
  { additionalProperties: false },
);
const Update = Type.Object(
  { ...Fields, value: Type.Optional(Fields.value) },
  { additionalProperties: false },
);
const Id = Type.Object({ id: Type.String({ minLength: 1, maxLength: 100 }) });

const time = (v: string | null | undefined) =>
  v === undefined ? undefined : v === null ? null : Date.parse(v);

function toInput(b: any, kind: string | undefined): Partial<CouponInput> {
  const out: Partial<CouponInput> = {};
  if (b.value !== undefined)
    out.value = kind === 'percent' ? Math.round(b.value * 100) : usdToMicros(b.value);
  if (b.user_id !== undefined) out.userId = b.user_id;
  if (b.valid_from !== undefined) out.validFrom = time(b.valid_from);
  if (b.valid_until !== undefined) out.validUntil = time(b.valid_until);
  if (b.max_uses !== undefined) out.maxUses = b.max_uses;
  if (b.once_per_user !== undefined) out.oncePerUser = b.once_per_user;
  if (b.new_users_only !== undefined) out.newUsersOnly = b.new_users_only;
  if (b.plan_ids !== undefined) out.planIds = b.plan_ids;
  if (b.is_active !== undefined) out.isActive = b.is_active;
  if (b.description !== undefined) out.description = b.description;
  return out;
}

/** Admin CRUD for coupons (each change audited). */
export function couponAdminRoutes(app: FastifyInstance, c: Commerce, audit: AuditSink | null): void {
  const checkPlans = (ids: string[] | null | undefined) => {
    for (const id of ids ?? [])
      if (!c.plans.get(id)) throw new GatewayError(400, `Unknown plan "${id}"`, { param: 'plan_ids' });
  };
  app.post(
    '/admin/coupons',
    {
      schema: { tags: ['admin'], summary: 'Create a coupon', body: Create },
      config: { auth: 'admin', permission: 'coupons:write' },
    },
    async (request, reply) => {
      const b = request.body as any;
      checkPlans(b.plan_ids);
      const row = await c.coupons.create(
        { code: b.code, kind: b.kind, ...toInput(b, b.kind) } as CouponInput,
        Date.now(),
      );
      await audit?.recordRequest(request, {
        action: 'coupon.create',
        resourceType: 'coupon',
        resourceId: row.id,
        details: { code: row.code },
      });
      return reply.code(201).send(couponJson(row));
    },
  );
  app.get(
    '/admin/coupons',
    {
      schema: {
        tags: ['admin'],
        summary: 'List coupons',
        querystring: Type.Object({
          limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500 })),
          offset: Type.Optional(Type.Integer({ minimum: 0 })),
        }),
      },
      config: { auth: 'admin', permission: 'coupons:read' },
    },
    async (request) => {
      const q = request.query as { limit?: number; offset?: number };
      return { coupons: (await c.coupons.list(q.limit ?? 100, q.offset ?? 0)).map(couponJson) };
    },
  );
  app.get(
    '/admin/coupons/:id',
    {
      schema: { tags: ['admin'], summary: 'One coupon', params: Id },
      config: { auth: 'admin', permission: 'coupons:read' },
    },
    async (request) => couponJson(await c.coupons.get((request.params as { id: string }).id)),
  );
  app.patch(
    '/admin/coupons/:id',
    {
      schema: { tags: ['admin'], summary: 'Change a coupon', params: Id, body: Update },
      config: { auth: 'admin', permission: 'coupons:write' },
    },
    async (request) => {
      const id = (request.params as { id: string }).id;
      const b = request.body as any;
      checkPlans(b.plan_ids);
      const current = await c.coupons.get(id);
      const row = await c.coupons.update(id, toInput(b, current.kind), Date.now());
      await audit?.recordRequest(request, {
        action: 'coupon.update',
        resourceType: 'coupon',
        resourceId: id,
        details: b,
      });
      return couponJson(row);
    },
  );
  app.delete(
    '/admin/coupons/:id',
    {
      schema: { tags: ['admin'], summary: 'Deactivate a coupon', params: Id },
      config: { auth: 'admin', permission: 'coupons:write' },
    },
    async (request) => {
      const id = (request.params as { id: string }).id;
      await c.coupons.deactivate(id, Date.now());
      await audit?.recordRequest(request, {
        action: 'coupon.deactivate',
        resourceType: 'coupon',
        resourceId: id,
      });
      return { success: true, id, is_active: false };
    },
  );
}
