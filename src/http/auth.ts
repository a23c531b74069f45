import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Principal } from '../accounts/principal.js';
import { isAdmin } from '../accounts/principal.js';
import type { AccountsService } from '../accounts/service.js';
import { GatewayError, unauthorized } from '../lib/errors.js';

/** The secret a request presents: `Authorization: Bearer …` or Anthropic's `x-api-key`. */
export function presentedSecret(request: FastifyRequest): string | null {
  const h = request.headers.authorization;
  if (typeof h === 'string') {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(h);
    if (m) return m[1]!;
  }
  const x = request.headers['x-api-key'];
  if (typeof x === 'string' && x.trim()) return x.trim();
  return null;
}

/**
 * Authentication for every route by its declared `config.auth`. A route that declares nothing
 * is refused at registration, so no route can silently skip authentication.
 */
export function installAuth(app: FastifyInstance, accounts: AccountsService, extraChecks: KeyCheck[]): void {
  app.decorateRequest('principal', null);
  app.decorateRequest('startedAt', 0);
  app.addHook('onRoute', (route) => {
    if (route.url === '*' || route.url.startsWith('/docs')) {
      route.config = { ...(route.config ?? {}), auth: route.config?.auth ?? 'public' };
    }
    if (!route.config?.auth) throw new Error(`route ${route.method} ${route.url} declares no config.auth`);
  });
  app.addHook('onRequest', async (request) => {
    request.startedAt = performance.now();
    const mode = request.routeOptions.config?.auth;
    if (!mode || mode === 'public') return;
    const secret = presentedSecret(request);
    if (!secret) throw unauthorized('Missing API key: send Authorization: Bearer <key>', 'missing_api_key');
    const principal = await accounts.authenticate(secret);
    if (!principal) throw unauthorized();
    checkKey(principal, request, extraChecks);
    if (mode === 'admin' && !isAdmin(principal)) {
      throw new GatewayError(403, 'This route needs an admin key', { code: 'admin_required' });
    }
    request.principal = principal;
  });
}

export type KeyCheck = (principal: Principal, request: FastifyRequest) => void;

function checkKey(p: Principal, request: FastifyRequest, extra: KeyCheck[]): void {
  const k = p.key;
  if (!k) return;
  if (!k.isActive) throw unauthorized('This API key is inactive', 'inactive_api_key');
  if (k.expiresAt !== null && k.expiresAt <= Date.now())
    throw unauthorized('This API key has expired', 'expired_api_key');
  if (k.userStatus !== 'active')
    throw new GatewayError(403, 'This account is suspended', { code: 'account_suspended' });
  for (const c of extra) c(p, request);
}

export function requireUser(request: FastifyRequest): Principal & { userId: string } {
  const p = request.principal;
  if (!p?.userId)
    throw new GatewayError(403, 'This route needs a user API key', { code: 'user_key_required' });
  return p as Principal & { userId: string };
}
