import type { FastifyInstance } from 'fastify';
import type { AuditLog } from './log.js';

/**
 * Every call of an admin route that got past authentication is audited (`admin.request`: method,
 * route, params, status), on top of the specific rows routes write for what they changed.
 * Install before routes are registered.
 */
export function installAdminAudit(app: FastifyInstance, audit: AuditLog): void {
  app.addHook('onResponse', async (request, reply) => {
    if (request.routeOptions.config?.auth !== 'admin' || !request.principal) return;
    await audit.recordRequest(request, {
      action: 'admin.request',
      resourceType: 'route',
      resourceId: `${request.method} ${request.routeOptions.url}`,
      details: {
        status: reply.statusCode,
        params: request.params ?? null,
        permission: request.routeOptions.config.permission ?? null,
      },
    });
  });
}
