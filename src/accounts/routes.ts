import { type TSchema, Type } from '@sinclair/typebox';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { AuditLog } from '../audit/log.js';
import { requireUser } from '../http/auth.js';
import { badRequest } from '../lib/errors.js';
import { microsToUsd } from '../lib/money.js';
import { type AccountsConfig, privyClientConfig } from './config.js';
import { type KeyService, type KeySettingsInput, keyView } from './key-service.js';
import type { PrivyLogin } from './privy.js';
import type { KeyRow } from './store.js';

const Nullable = (t: TSchema) => Type.Union([t, Type.Null()]);
const StrList = (max: number) => Type.Array(Type.String({ minLength: 1, maxLength: 300 }), { maxItems: max });

const keySettings = {
  scope_permissions: Type.Optional(
    Nullable(Type.Record(Type.String({ maxLength: 50 }), StrList(100), { maxProperties: 20 })),
  ),
  expiration_days: Type.Optional(Nullable(Type.Number({ exclusiveMinimum: 0, maximum: 3650 }))),
  max_requests: Type.Optional(Nullable(Type.Integer({ minimum: 1, maximum: 1_000_000_000_000 }))),
  ip_allowlist: Type.Optional(Nullable(StrList(200))),
  domain_referrers: Type.Optional(Nullable(StrList(200))),
  allowed_models: Type.Optional(Nullable(StrList(500))),
  max_spend_usd: Type.Optional(Nullable(Type.Number({ minimum: 0, maximum: 1_000_000 }))),
};
const KeyName = Type.String({ minLength: 1, maxLength: 100 });
const EnvTag = Type.String({ maxLength: 20 });

export interface AccountsRouteDeps {
  keys: KeyService;
  audit: AuditLog;
  privy: PrivyLogin;
  config: AccountsConfig;
}

/** Settings that changed, for the audit row (never secrets). */
function changes(before: KeyRow, after: KeyRow): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(after)) {
    if (k === 'key_hash' || k === 'previous_key_hash' || k === 'updated_at') continue;
    if ((before as Record<string, unknown>)[k] !== (after as Record<string, unknown>)[k])
      out[k] = (after as Record<string, unknown>)[k];
  }
  return out;
}

export function accountsRoutes(app: FastifyInstance, deps: AccountsRouteDeps): void {
  const { keys, audit } = deps;

  const loginSchema = {
    tags: ['auth'],
    summary: 'Sign in (or sign up) with a Privy access token',
    body: Type.Object(
      {
        token: Type.Optional(Type.String({ minLength: 10, maxLength: 8192 })),
        access_token: Type.Optional(Type.String({ minLength: 10, maxLength: 8192 })),
        privy_access_token: Type.Optional(Type.String({ minLength: 10, maxLength: 8192 })),
        email: Type.Optional(Type.String({ format: 'email', maxLength: 320 })),
        username: Type.Optional(Type.String({ minLength: 1, maxLength: 100 })),
        referral_code: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
        issue_key: Type.Optional(Type.Boolean()),
      },
      { additionalProperties: true },
    ),
  };
  const login = async (request: FastifyRequest) => {
    const b = request.body as Record<string, any>;
    const bearer = /^Bearer\s+(\S+)$/i.exec(request.headers.authorization ?? '')?.[1];
    const token = b.token ?? b.access_token ?? b.privy_access_token ?? bearer;
    if (!token) throw badRequest("Missing required parameter: 'token' (the Privy access token)", 'token');
    const r = await deps.privy.login(
      { token, email: b.email, username: b.username, referral_code: b.referral_code, issue_key: b.issue_key },
      { ip: request.ip, userAgent: (request.headers['user-agent'] as string | undefined) ?? null },
    );
    return {
      success: true,
      message: r.isNew ? 'User created' : 'Signed in',
      user_id: r.user.id,
      privy_user_id: r.user.privy_id,
      username: r.user.username,
      email: r.user.email,
      role: r.user.role,
      credits: microsToUsd(r.user.balance_micros),
      is_new_user: r.isNew,
      referral_code: r.user.referral_code ?? null,
      referred_by_code: r.user.referred_by_code ?? null,
      ...(r.apiKey ? { api_key: r.apiKey } : {}),
    };
  };
  for (const url of ['/auth/privy', '/auth'])
    app.post(url, { schema: loginSchema, config: { auth: 'public' } }, login);

  // Public: how a browser signs in (the dashboard reads it before showing its sign-in page).
  const signInConfig = { privy: privyClientConfig(deps.config) };
  app.get(
    '/auth/config',
    {
      schema: {
        tags: ['auth'],
        summary: 'Sign-in options: the Privy app id, client id and API URL, or privy: null',
      },
      config: { auth: 'public' },
    },
    async (_request, reply) => {
      reply.header('cache-control', 'no-cache');
      return signInConfig;
    },
  );

  app.get(
    '/user/api-keys',
    {
      schema: { tags: ['keys'], summary: 'List your API keys (never the secrets)' },
      config: { auth: 'user' },
    },
    async (request) => {
      const p = requireUser(request);
      const list = await keys.list(p.userId);
      return { keys: list, total: list.length };
    },
  );

  app.post(
    '/user/api-keys',
    {
      schema: {
        tags: ['keys'],
        summary: 'Create an API key (the secret is returned once)',
        body: Type.Object(
          { key_name: KeyName, environment_tag: Type.Optional(EnvTag), ...keySettings },
          { additionalProperties: false },
        ),
      },
      config: { auth: 'user' },
    },
    async (request, reply) => {
      const p = requireUser(request);
      const r = await keys.create(p.userId, request.body as KeySettingsInput & { key_name: string });
      await audit.recordRequest(request, {
        userId: p.userId,
        action: 'api_key.create',
        resourceType: 'api_key',
        resourceId: r.key.id,
        details: { key_name: r.key.key_name, environment_tag: r.key.environment_tag },
      });
      reply.code(201);
      return { success: true, api_key: r.secret, key: r.key };
    },
  );

  const idParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 100 }) });

  app.get(
    '/user/api-keys/:id',
    {
      schema: { tags: ['keys'], summary: 'One of your API keys', params: idParams },
      config: { auth: 'user' },
    },
    async (request) => {
      const p = requireUser(request);
      const k = await keys.owned(p.userId, (request.params as { id: string }).id);
      return keyView(k);
    },
  );

  app.put(
    '/user/api-keys/:id',
    {
      schema: {
        tags: ['keys'],
        summary: 'Change the settings of one of your API keys (including is_active)',
        params: idParams,
        body: Type.Object(
          {
            key_name: Type.Optional(KeyName),
            environment_tag: Type.Optional(EnvTag),
            is_active: Type.Optional(Type.Boolean()),
            ...keySettings,
          },
          { additionalProperties: false },
        ),
      },
      config: { auth: 'user' },
    },
    async (request) => {
      const p = requireUser(request);
      const id = (request.params as { id: string }).id;
      const r = await keys.update(p.userId, id, request.body as KeySettingsInput);
      await audit.recordRequest(request, {
        userId: p.userId,
        action: 'api_key.update',
        resourceType: 'api_key',
        resourceId: id,
        details: changes(r.before, r.after),
      });
      return { success: true, key: r.key };
    },
  );

  app.post(
    '/user/api-keys/:id/rotate',
    {
      schema: {
        tags: ['keys'],
        summary:
          'Issue a new secret for one of your keys (returned once); the old one stops now or after a grace period',
        params: idParams,
        body: Type.Optional(
          Type.Object(
            { grace_period_seconds: Type.Optional(Type.Integer({ minimum: 0, maximum: 7 * 86_400 })) },
            { additionalProperties: false },
          ),
        ),
      },
      config: { auth: 'user' },
    },
    async (request) => {
      const p = requireUser(request);
      const id = (request.params as { id: string }).id;
      const grace =
        (request.body as { grace_period_seconds?: number } | undefined)?.grace_period_seconds ?? 0;
      const r = await keys.rotate(p.userId, id, grace);
      await audit.recordRequest(request, {
        userId: p.userId,
        action: 'api_key.rotate',
        resourceType: 'api_key',
        resourceId: id,
        details: { grace_period_seconds: grace },
      });
      return { success: true, api_key: r.secret, key: r.key };
    },
  );

  app.delete(
    '/user/api-keys/:id',
    {
      schema: {
        tags: ['keys'],
        summary: 'Revoke one of your API keys (send {"confirmation":"DELETE_KEY"})',
        params: idParams,
        body: Type.Object({ confirmation: Type.String() }, { additionalProperties: false }),
      },
      config: { auth: 'user' },
    },
    async (request) => {
      const p = requireUser(request);
      const id = (request.params as { id: string }).id;
      if ((request.body as { confirmation: string }).confirmation !== 'DELETE_KEY')
        throw badRequest('Send {"confirmation":"DELETE_KEY"} to revoke a key', 'confirmation');
      const k = await keys.revoke(p.userId, id);
      await audit.recordRequest(request, {
        userId: p.userId,
        action: 'api_key.revoke',
        resourceType: 'api_key',
        resourceId: id,
        details: { key_name: k.name },
      });
      return { success: true, deleted: id };
    },
  );
}
