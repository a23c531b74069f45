import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Principal } from '../accounts/principal.js';
import { actionOf, domainAllowed, requestHost, resourceOf, scopeAllows } from '../accounts/restrictions.js';
import type { Roles } from '../accounts/roles.js';
import type { AccountsService } from '../accounts/service.js';
import type { AuthThrottle } from '../accounts/throttle.js';
import { GatewayError, unauthorized } from '../lib/errors.js';
import type { AuthMode } from './types.js';

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

export interface RouteInfo {
  method: string;
  url: string;
  auth: AuthMode;
  permission: string | null;
  /** Bills through the pipeline: API keys only (config.inference). */
  inference: boolean;
}

/** Permission an admin route gets when it declares none: only full admins (`*`) hold it. */
export const FULL_ADMIN = '*';

const tables = new WeakMap<FastifyInstance, RouteInfo[]>();

/** Every route registered on the app with its auth mode and permission (for the authorization test). */
export function routeTable(app: FastifyInstance): RouteInfo[] {
  return tables.get(app) ?? [];
}

export interface AuthOptions {
  roles?: Roles;
  throttle?: AuthThrottle;
}

/**
 * Authentication for every route by its declared `config.auth`. A route that declares nothing
 * is refused at registration, so no route can silently skip authentication. Admin routes need
 * their declared `config.permission` (see accounts/roles.ts).
 */
export function installAuth(
  app: FastifyInstance,
  accounts: AccountsService,
  extraChecks: KeyCheck[],
  opts: AuthOptions = {},
): void {
  const table: RouteInfo[] = [];
  tables.set(app, table);
  app.decorateRequest('principal', null);
  app.decorateRequest('startedAt', 0);
  app.addHook('onRoute', (route) => {
    if (route.url === '*' || route.url.startsWith('/docs')) {
      route.config = { ...(route.config ?? {}), auth: route.config?.auth ?? 'public' };
    }
    if (!route.config?.auth) throw new Error(`route ${route.method} ${route.url} declares no config.auth`);
    const auth = route.config.auth;
    if (auth === 'admin' && !route.config.permission)
      route.config = { ...route.config, permission: FULL_ADMIN };
    for (const method of Array.isArray(route.method) ? route.method : [route.method])
      table.push({
        method,
        url: route.url,
        auth,
        permission: route.config.permission ?? null,
        inference: route.config.inference === true,
      });
  });
  app.addHook('onRequest', async (request) => {
    request.startedAt = performance.now();
    const config = request.routeOptions.config;
    const mode = config?.auth;
    if (!mode || mode === 'public') return;
    const wait = opts.throttle?.blockedFor(request.ip) ?? 0;
    if (wait > 0)
      throw new GatewayError(
        429,
        'Too many failed authentication attempts from this address; try again later',
        {
          code: 'too_many_auth_failures',
          headers: { 'retry-after': String(wait) },
        },
      );
    const secret = presentedSecret(request);
    if (!secret) throw unauthorized('Missing API key: send Authorization: Bearer <key>', 'missing_api_key');
    const principal = await accounts.authenticate(secret, request.raw.socket);
    if (!principal) {
      opts.throttle?.fail(request.ip, userAgentOf(request), 'invalid_api_key');
      throw unauthorized();
    }
    if (principal.kind === 'session' && config.inference) throw sessionRefused();
    try {
      await checkKey(principal, request, accounts, extraChecks);
    } catch (err) {
      if (err instanceof GatewayError && err.status === 401)
        opts.throttle?.fail(request.ip, userAgentOf(request), err.code ?? 'invalid_api_key');
      throw err;
    }
    if (mode === 'admin') {
      const perm = config.permission ?? FULL_ADMIN;
      const allowed = opts.roles
        ? opts.roles.can(principal, perm)
        : principal.kind === 'admin' || principal.role === 'admin';
      if (!allowed)
        throw new GatewayError(403, `This route needs the '${perm}' permission`, {
          code: 'permission_denied',
        });
    }
    request.principal = principal;
    if (principal.keyId) accounts.touch(principal.keyId);
  });
}

/** Inference bills the caller's credits: it takes an API key, never a sign-in session. */
export function sessionRefused(): GatewayError {
  return unauthorized(
    'A sign-in session cannot call inference endpoints: send an API key (Authorization: Bearer gw_…); create one at /user/api-keys',
    'api_key_required',
  );
}

export type KeyCheck = (principal: Principal, request: FastifyRequest) => void;

const userAgentOf = (r: FastifyRequest) => {
  const ua = r.headers['user-agent'];
  return typeof ua === 'string' ? ua : null;
};

/**
 * Key restrictions in the seed's order: active, not expired, request cap, IP allowlist, domain,
 * scopes. Everything is read from the cached principal; only a key with a request cap writes
 * (one conditional UPDATE). Allowed models and the spend cap need the model and the cost, so
 * they are a pipeline guard (accounts/guard.ts).
 */
async function checkKey(
  p: Principal,
  request: FastifyRequest,
  accounts: AccountsService,
  extra: KeyCheck[],
): Promise<void> {
  const k = p.key;
  if (!k) return;
  if (!k.isActive) throw unauthorized('This API key is inactive', 'inactive_api_key');
  if (k.expiresAt !== null && k.expiresAt <= Date.now())
    throw unauthorized('This API key has expired', 'expired_api_key');
  if (k.userStatus !== 'active')
    throw new GatewayError(403, 'This account is suspended', { code: 'account_suspended' });
  if (k.maxRequests !== null && p.keyId && !(await accounts.countRequest(p.keyId)))
    throw new GatewayError(429, 'This API key has used all of its max_requests', {
      code: 'key_request_limit_reached',
    });
  if (k.ipAllowed && !k.ipAllowed(request.ip))
    throw new GatewayError(403, 'This API key is not allowed from this IP address', {
      code: 'ip_not_allowed',
    });
  if (k.domains && !domainAllowed(requestHost(request.headers.origin, request.headers.referer), k.domains))
    throw new GatewayError(403, 'This API key is not allowed from this domain (Origin/Referer)', {
      code: 'domain_not_allowed',
    });
  if (k.scopes) {
    const resource = resourceOf(request.routeOptions.url ?? request.url);
    const action = actionOf(request.method);
    if (!scopeAllows(k.scopes, action, resource))
      throw new GatewayError(403, `This API key's scopes do not allow ${action} on ${resource}`, {
        code: 'insufficient_scope',
      });
  }
  for (const c of extra) c(p, request);
}

export function requireUser(request: FastifyRequest): Principal & { userId: string } {
  const p = request.principal;
  if (!p?.userId)
    throw new GatewayError(403, 'This route needs a user API key', { code: 'user_key_required' });
  return p as Principal & { userId: string };
}
