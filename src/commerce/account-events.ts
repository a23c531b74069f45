import type { FastifyInstance } from 'fastify';
import type { Commerce } from './index.js';

/**
 * Until accounts emits events, commerce learns of new users and keys from the successful
 * responses of the routes that create them: the welcome mail (and the trial when
 * TRIAL_AUTO_START is on) and the "new API key" mail. Runs before the response is sent, so a
 * client that asks right after sees its trial; a failure is logged and never fails the request.
 */
const USER_ROUTES = new Set(['/auth/privy', '/auth', '/admin/create', '/create']);
const KEY_ROUTES = new Set(['/user/api-keys']);

export function installAccountEvents(app: FastifyInstance, c: Commerce): void {
  app.addHook('onSend', async (request, reply, payload) => {
    if (request.method !== 'POST' || reply.statusCode >= 300 || typeof payload !== 'string') return payload;
    const url = request.routeOptions.url ?? '';
    if (!USER_ROUTES.has(url) && !KEY_ROUTES.has(url)) return payload;
    try {
      const body = JSON.parse(payload) as Record<string, any>;
      if (USER_ROUTES.has(url)) {
        const isNew = url.startsWith('/auth') ? body.is_new_user === true : true;
        if (isNew && typeof body.user_id === 'string') await c.userCreated(body.user_id);
      } else if (request.principal?.userId && typeof body.key?.id === 'string') {
        await c.keyCreated(request.principal.userId, {
          id: body.key.id,
          name: String(body.key.key_name ?? ''),
          prefix: String(body.key.key_prefix ?? ''),
        });
      }
    } catch (err) {
      request.log.warn({ err }, 'account event (welcome mail, trial, key mail) failed');
    }
    return payload;
  });
}
