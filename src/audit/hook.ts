import type { FastifyInstance, FastifyReply, FastifyRequest, onResponseHookHandler } from 'fastify';
import type { AuditLog } from './log.js';

/**
 * Every call of an admin route that got past authentication is audited (`admin.request`: method,
 * route, params, status), on top of the specific rows routes write for what they changed.
 * Install before routes are registered. The hook is the admin routes' own: other routes (inference
 * above all) never run it.
 */
export function installAdminAudit(app: FastifyInstance, audit: AuditLog): void {
  const hook = async (request: FastifyRequest, reply: FastifyReply) => {
    if (!request.principal) return;
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
  };
  app.addHook('onRoute', (route) => {
    if (route.config?.auth !== 'admin') return;
    const own = route.onResponse;
    route.onResponse = [
      ...(Array.isArray(own) ? own : own ? [own] : []),
      hook as onResponseHookHandler,
    ] as typeof route.onResponse;
  });
}
