import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { dateRange, GROUPS, type UsageGroup, type UsageStats } from '../admin/stats.js';
import type { AuditLog } from '../audit/log.js';
import { requireUser } from '../http/auth.js';
import { badRequest } from '../lib/errors.js';
import { type ProfileService, profileView } from './profile.js';

const Page = {
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500, default: 50 })),
  offset: Type.Optional(Type.Integer({ minimum: 0, maximum: 1_000_000, default: 0 })),
};

/** A user's own profile, usage and credit history: every query is scoped to the caller's user id. */
export function profileRoutes(
  app: FastifyInstance,
  profile: ProfileService,
  stats: UsageStats,
  audit: AuditLog,
): void {
  app.get(
    '/user/profile',
    { schema: { tags: ['user'], summary: 'Your profile' }, config: { auth: 'user' } },
    async (request) => profileView(await profile.get(requireUser(request).userId)),
  );

  app.put(
    '/user/profile',
    {
      schema: {
        tags: ['user'],
        summary: 'Change your username, email or display name',
        body: Type.Object(
          {
            username: Type.Optional(Type.Union([Type.String({ minLength: 1, maxLength: 100 }), Type.Null()])),
            email: Type.Optional(Type.Union([Type.String({ format: 'email', maxLength: 320 }), Type.Null()])),
            display_name: Type.Optional(Type.Union([Type.String({ maxLength: 200 }), Type.Null()])),
          },
          { additionalProperties: false },
        ),
      },
      config: { auth: 'user' },
    },
    async (request) => {
      const p = requireUser(request);
      const body = request.body as Record<string, string | null | undefined>;
      const u = await profile.update(p.userId, body);
      await audit.recordRequest(request, {
        userId: p.userId,
        action: 'user.profile_update',
        resourceType: 'user',
        resourceId: p.userId,
        details: { fields: Object.keys(body) },
      });
      return profileView(u);
    },
  );

  app.delete(
    '/user/account',
    {
      schema: {
        tags: ['user'],
        summary:
          'Delete your account (send {"confirmation":"DELETE_ACCOUNT"}): keys revoked, personal data removed, ledger kept',
        body: Type.Object({ confirmation: Type.String() }, { additionalProperties: false }),
      },
      config: { auth: 'user' },
    },
    async (request) => {
      const p = requireUser(request);
      if ((request.body as { confirmation: string }).confirmation !== 'DELETE_ACCOUNT')
        throw badRequest('Send {"confirmation":"DELETE_ACCOUNT"} to delete your account', 'confirmation');
      const keys = await profile.deleteAccount(p.userId);
      await audit.recordRequest(request, {
        userId: p.userId,
        action: 'user.delete',
        resourceType: 'user',
        resourceId: p.userId,
        details: { keys_revoked: keys.length },
      });
      return { success: true, user_id: p.userId, keys_revoked: keys.length };
    },
  );

  app.get(
    '/user/usage',
    {
      schema: {
        tags: ['user'],
        summary: 'Your usage over a date range, grouped by day, key, model or provider',
        querystring: Type.Object({
          start_date: Type.Optional(Type.String()),
          end_date: Type.Optional(Type.String()),
          group_by: Type.Optional(Type.String({ default: 'day' })),
          limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 100 })),
        }),
      },
      config: { auth: 'user' },
    },
    async (request) => {
      const p = requireUser(request);
      const q = request.query as {
        start_date?: string;
        end_date?: string;
        group_by?: string;
        limit?: number;
      };
      const groupBy = (q.group_by ?? 'day') as UsageGroup;
      if (!GROUPS.includes(groupBy) || groupBy === 'user')
        throw badRequest('group_by must be day, key, model or provider', 'group_by');
      const { from, to } = dateRange(q.start_date, q.end_date);
      const rows = await stats.usage({ from, to, groupBy, userId: p.userId, limit: q.limit ?? 100 });
      return {
        user_id: p.userId,
        start: new Date(from).toISOString(),
        end: new Date(to).toISOString(),
        group_by: groupBy,
        data: rows,
      };
    },
  );

  app.get(
    '/user/credit-transactions',
    {
      schema: {
        tags: ['user'],
        summary: 'Your credit ledger: grants, purchases and usage charges, newest first',
        querystring: Type.Object(Page),
      },
      config: { auth: 'user' },
    },
    async (request) => {
      const p = requireUser(request);
      const q = request.query as { limit?: number; offset?: number };
      const limit = q.limit ?? 50;
      const offset = q.offset ?? 0;
      return {
        user_id: p.userId,
        limit,
        offset,
        ...(await profile.creditTransactions(p.userId, limit, offset)),
      };
    },
  );
}
