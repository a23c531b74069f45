import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { dateRange } from '../admin/stats.js';
import { requireUser } from '../http/auth.js';
import type { AuditRow, AuditStore } from './store.js';

const Filters = {
  action: Type.Optional(Type.String({ maxLength: 100 })),
  resource_type: Type.Optional(Type.String({ maxLength: 100 })),
  start_date: Type.Optional(Type.String()),
  end_date: Type.Optional(Type.String()),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500, default: 50 })),
  offset: Type.Optional(Type.Integer({ minimum: 0, maximum: 10_000_000, default: 0 })),
};

type Q = {
  user_id?: string;
  action?: string;
  resource_type?: string;
  start_date?: string;
  end_date?: string;
  limit?: number;
  offset?: number;
};

export const auditView = (r: AuditRow) => ({
  id: Number(r.id),
  user_id: r.user_id,
  actor: r.actor,
  action: r.action,
  resource_type: r.resource_type,
  resource_id: r.resource_id,
  details: r.details ? JSON.parse(r.details) : null,
  ip: r.ip,
  user_agent: r.user_agent,
  at: new Date(r.at).toISOString(),
});

async function page(store: AuditStore, q: Q, userId: string | undefined) {
  const range = q.start_date || q.end_date ? dateRange(q.start_date, q.end_date) : null;
  const limit = q.limit ?? 50;
  const offset = q.offset ?? 0;
  const { rows, total } = await store.query({
    userId,
    action: q.action,
    resourceType: q.resource_type,
    from: range?.from,
    to: range ? range.to - 1 : undefined,
    limit,
    offset,
  });
  return { total, limit, offset, logs: rows.map(auditView) };
}

export function auditRoutes(app: FastifyInstance, store: AuditStore): void {
  app.get(
    '/admin/audit-logs',
    {
      schema: {
        tags: ['admin'],
        summary: 'Audit log (filters: user_id, action, resource_type, start_date, end_date; paginated)',
        querystring: Type.Object({ user_id: Type.Optional(Type.String({ maxLength: 100 })), ...Filters }),
      },
      config: { auth: 'admin', permission: 'audit:read' },
    },
    async (request) => {
      const q = request.query as Q;
      return page(store, q, q.user_id);
    },
  );

  app.get(
    '/user/audit-logs',
    {
      schema: { tags: ['user'], summary: 'Your own audit log rows', querystring: Type.Object(Filters) },
      config: { auth: 'user' },
    },
    async (request) => page(store, request.query as Q, requireUser(request).userId),
  );
}
