import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { type Kysely, sql } from 'kysely';
import { profileView } from '../accounts/profile.js';
import type { Roles } from '../accounts/roles.js';
import type { AccountsService } from '../accounts/service.js';
import type { AuditLog } from '../audit/log.js';
import type { BillingStore } from '../billing/store.js';
import type { Database } from '../db/schema.js';
import { badRequest, GatewayError, notFound } from '../lib/errors.js';
import { microsToUsd, usdToMicros } from '../lib/money.js';
import { dateRange, GROUPS, type UsageGroup, type UsageStats } from './stats.js';

export interface AdminDeps {
  db: Kysely<Database>;
  accounts: AccountsService;
  billing: BillingStore;
  roles: Roles;
  audit: AuditLog;
  stats: UsageStats;
}

const IdParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 100 }) });

/** Admin API over users, roles and usage. Every change is audited (and every call, by the admin audit hook). */
export function adminUserRoutes(app: FastifyInstance, d: AdminDeps): void {
  app.get(
    '/admin/users',
    {
      schema: {
        tags: ['admin'],
        summary: 'Search users (id, email or username contains `search`), paginated',
        querystring: Type.Object({
          search: Type.Optional(Type.String({ maxLength: 200 })),
          role: Type.Optional(Type.String({ maxLength: 50 })),
          status: Type.Optional(Type.String({ maxLength: 20 })),
          limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500, default: 50 })),
          offset: Type.Optional(Type.Integer({ minimum: 0, default: 0 })),
        }),
      },
      config: { auth: 'admin', permission: 'users:read' },
    },
    async (request) => {
      const q = request.query as {
        search?: string;
        role?: string;
        status?: string;
        limit?: number;
        offset?: number;
      };
      let base = d.db.selectFrom('users');
      if (q.search) {
        const like = `%${q.search.toLowerCase().replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
        base = base.where((eb) =>
          eb.or([
            eb('id', '=', q.search!),
            eb(sql`lower(email)`, 'like', sql`${like} escape '\\'`),
            eb(sql`lower(username)`, 'like', sql`${like} escape '\\'`),
          ]),
        );
      }
      if (q.role) base = base.where('role', '=', q.role);
      if (q.status) base = base.where('status', '=', q.status);
      const limit = q.limit ?? 50;
      const offset = q.offset ?? 0;
      const [rows, count] = await Promise.all([
        base.selectAll().orderBy('created_at', 'desc').orderBy('id').limit(limit).offset(offset).execute(),
        base.select(sql<number>`count(*)`.as('n')).executeTakeFirstOrThrow(),
      ]);
      return { total: Number(count.n), limit, offset, users: rows.map(profileView) };
    },
  );

  app.get(
    '/admin/users/:id',
    {
      schema: { tags: ['admin'], summary: 'One user with their keys (no secrets)', params: IdParams },
      config: { auth: 'admin', permission: 'users:read' },
    },
    async (request) => {
      const id = (request.params as { id: string }).id;
      const u = await d.accounts.store.findUser(id);
      if (!u) throw notFound('No such user', 'user_not_found');
      const keys = await d.accounts.store.listKeys(id);
      return {
        ...profileView(u),
        held: microsToUsd(u.held_micros),
        keys: keys.map((k) => ({
          id: k.id,
          key_name: k.name,
          key_prefix: k.prefix,
          environment_tag: k.environment,
          is_active: k.is_active === 1,
          requests_used: k.request_count,
          spent_usd: microsToUsd(k.spent_micros),
          last_used_at: k.last_used_at ? new Date(k.last_used_at).toISOString() : null,
        })),
      };
    },
  );

  app.patch(
    '/admin/users/:id',
    {
      schema: {
        tags: ['admin'],
        summary: 'Change a user: role, status (active | suspended), credits (USD delta through the ledger)',
        params: IdParams,
        body: Type.Object(
          {
            role: Type.Optional(Type.String({ minLength: 1, maxLength: 50 })),
            status: Type.Optional(Type.Union([Type.Literal('active'), Type.Literal('suspended')])),
            credits: Type.Optional(Type.Number({ minimum: -1_000_000, maximum: 1_000_000 })),
            reason: Type.Optional(Type.String({ maxLength: 500 })),
            idempotency_key: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
          },
          { additionalProperties: false },
        ),
      },
      config: { auth: 'admin', permission: 'users:write' },
    },
    async (request) => {
      const id = (request.params as { id: string }).id;
      const b = request.body as {
        role?: string;
        status?: string;
        credits?: number;
        reason?: string;
        idempotency_key?: string;
      };
      const u = await d.accounts.store.findUser(id);
      if (!u || u.status === 'deleted') throw notFound('No such user', 'user_not_found');
      if (b.role !== undefined && !d.roles.exists(b.role))
        throw badRequest(`Unknown role '${b.role}'`, 'role');
      const now = Date.now();
      const patch: Record<string, unknown> = {};
      if (b.role !== undefined && b.role !== u.role) patch.role = b.role;
      if (b.status !== undefined && b.status !== u.status) patch.status = b.status;
      if (Object.keys(patch).length) {
        await d.accounts.store.updateUser(id, { ...patch, updated_at: now });
        d.accounts.invalidateUser(id);
      }
      if (patch.role !== undefined)
        await d.audit.recordRequest(request, {
          userId: id,
          action: 'user.role_change',
          resourceType: 'user',
          resourceId: id,
          details: { from: u.role, to: patch.role, reason: b.reason ?? null },
        });
      if (patch.status !== undefined)
        await d.audit.recordRequest(request, {
          userId: id,
          action: patch.status === 'suspended' ? 'user.suspend' : 'user.reactivate',
          resourceType: 'user',
          resourceId: id,
          details: { from: u.status, to: patch.status, reason: b.reason ?? null },
        });
      let ledger: { balanceAfter: number; ledgerId: number } | null = null;
      if (b.credits !== undefined) {
        const amount = usdToMicros(b.credits);
        if (amount === 0) throw badRequest('credits must not be zero', 'credits');
        ledger = await d.billing.post(
          {
            userId: id,
            kind: 'admin_credit',
            amount,
            description: b.reason ?? null,
            idempotencyKey: b.idempotency_key ? `admin_credit:${b.idempotency_key}` : null,
            reference: request.principal?.userId ?? 'admin_key',
          },
          now,
        );
        if (!ledger)
          throw new GatewayError(409, 'This idempotency_key was already applied', {
            code: 'duplicate_request',
          });
        await d.audit.recordRequest(request, {
          userId: id,
          action: 'credits.admin_adjust',
          resourceType: 'user',
          resourceId: id,
          details: { amount_usd: microsToUsd(amount), ledger_id: ledger.ledgerId, reason: b.reason ?? null },
        });
      }
      const after = (await d.accounts.store.findUser(id))!;
      return { success: true, user: profileView(after), ...(ledger ? { ledger_id: ledger.ledgerId } : {}) };
    },
  );

  app.get(
    '/admin/roles',
    {
      schema: { tags: ['admin'], summary: 'Built-in and custom roles' },
      config: { auth: 'admin', permission: 'roles:read' },
    },
    async () => ({ roles: d.roles.list() }),
  );

  app.put(
    '/admin/roles/:name',
    {
      schema: {
        tags: ['admin'],
        summary: 'Create or replace a custom role (a named set of `resource:action` permissions)',
        params: Type.Object({ name: Type.String({ minLength: 1, maxLength: 50 }) }),
        body: Type.Object(
          {
            permissions: Type.Array(Type.String({ maxLength: 100 }), { maxItems: 200 }),
            description: Type.Optional(Type.String({ maxLength: 500 })),
          },
          { additionalProperties: false },
        ),
      },
      config: { auth: 'admin', permission: 'roles:write' },
    },
    async (request) => {
      const name = (request.params as { name: string }).name;
      const b = request.body as { permissions: string[]; description?: string };
      const existed = d.roles.exists(name);
      await d.roles.upsert(name, b.permissions, b.description ?? null, Date.now());
      // Principals carry only the role name; permissions are looked up per request, so nothing to invalidate.
      await d.audit.recordRequest(request, {
        action: existed ? 'role.update' : 'role.create',
        resourceType: 'role',
        resourceId: name,
        details: { permissions: b.permissions },
      });
      return {
        success: true,
        role: { name, permissions: d.roles.permissionsOf(name), description: b.description ?? null },
      };
    },
  );

  app.delete(
    '/admin/roles/:name',
    {
      schema: {
        tags: ['admin'],
        summary: 'Delete a custom role that no user has',
        params: Type.Object({ name: Type.String({ minLength: 1, maxLength: 50 }) }),
      },
      config: { auth: 'admin', permission: 'roles:write' },
    },
    async (request) => {
      const name = (request.params as { name: string }).name;
      const removed = await d.roles.remove(name, async () =>
        Boolean(await d.db.selectFrom('users').select('id').where('role', '=', name).executeTakeFirst()),
      );
      if (!removed) throw notFound('No such role', 'role_not_found');
      await d.audit.recordRequest(request, { action: 'role.delete', resourceType: 'role', resourceId: name });
      return { success: true, deleted: name };
    },
  );

  app.get(
    '/admin/monitor',
    {
      schema: {
        tags: ['admin'],
        summary:
          'Totals for today and this month (UTC): users, active users, requests, tokens, spend, error rate, top users and models',
      },
      config: { auth: 'admin', permission: 'monitor:read' },
    },
    async () => d.stats.monitor(),
  );

  app.get(
    '/admin/usage',
    {
      schema: {
        tags: ['admin'],
        summary: 'Usage over a date range grouped by day, user, key, model or provider',
        querystring: Type.Object({
          start_date: Type.Optional(Type.String()),
          end_date: Type.Optional(Type.String()),
          group_by: Type.Optional(Type.String({ default: 'day' })),
          user_id: Type.Optional(Type.String({ maxLength: 100 })),
          limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 100 })),
        }),
      },
      config: { auth: 'admin', permission: 'usage:read' },
    },
    async (request) => {
      const q = request.query as {
        start_date?: string;
        end_date?: string;
        group_by?: string;
        user_id?: string;
        limit?: number;
      };
      const groupBy = (q.group_by ?? 'day') as UsageGroup;
      if (!GROUPS.includes(groupBy))
        throw badRequest('group_by must be day, user, key, model or provider', 'group_by');
      const { from, to } = dateRange(q.start_date, q.end_date);
      const rows = await d.stats.usage({ from, to, groupBy, userId: q.user_id, limit: q.limit ?? 100 });
      return {
        start: new Date(from).toISOString(),
        end: new Date(to).toISOString(),
        group_by: groupBy,
        data: rows,
      };
    },
  );
}
