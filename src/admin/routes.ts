import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { normalizeEnvironment } from '../accounts/keys.js';
import type { AccountsService } from '../accounts/service.js';
import type { AuditLog } from '../audit/log.js';
import type { BillingStore } from '../billing/store.js';
import { isUniqueViolation } from '../billing/store.js';
import { badRequest, GatewayError } from '../lib/errors.js';
import { microsToUsd, usdToMicros } from '../lib/money.js';

const Usd = Type.Number({ minimum: 0, maximum: 1_000_000 });

export function adminRoutes(
  app: FastifyInstance,
  accounts: AccountsService,
  billing: BillingStore,
  audit?: AuditLog,
): void {
  const create = async (request: any) => {
    const b = request.body as {
      email: string;
      username?: string;
      credits?: number;
      environment_tag?: string;
      role?: string;
    };
    const env = normalizeEnvironment(b.environment_tag);
    if (!env)
      throw badRequest('environment_tag must be live, test, staging or development', 'environment_tag');
    try {
      const r = await accounts.createUser({
        email: b.email.toLowerCase(),
        username: b.username ?? null,
        creditsMicros: usdToMicros(b.credits ?? 0),
        environment: env,
        role: b.role,
        grantKind: 'admin_grant',
      });
      await audit?.recordRequest(request, {
        userId: r.user.id,
        action: 'user.create',
        resourceType: 'user',
        resourceId: r.user.id,
        details: { role: r.user.role, credits_usd: microsToUsd(r.balanceMicros), key_id: r.keyId },
      });
      return {
        user_id: r.user.id,
        username: r.user.username,
        email: r.user.email,
        role: r.user.role,
        api_key: r.apiKey,
        key_id: r.keyId,
        credits: microsToUsd(r.balanceMicros),
        environment_tag: env,
      };
    } catch (err) {
      if (isUniqueViolation(err))
        throw new GatewayError(409, 'A user with this email or username exists', { code: 'user_exists' });
      throw err;
    }
  };
  const createSchema = {
    tags: ['admin'],
    summary: 'Create a user with a primary API key (shown once) and opening credit',
    body: Type.Object(
      {
        email: Type.String({ format: 'email', maxLength: 320 }),
        username: Type.Optional(Type.String({ minLength: 1, maxLength: 100 })),
        credits: Type.Optional(Usd),
        environment_tag: Type.Optional(Type.String()),
        role: Type.Optional(
          Type.Union([Type.Literal('user'), Type.Literal('developer'), Type.Literal('admin')]),
        ),
      },
      { additionalProperties: false },
    ),
  };
  for (const url of ['/admin/create', '/create']) {
    app.post(url, { schema: createSchema, config: { auth: 'admin', permission: 'users:create' } }, create);
  }

  app.post(
    '/admin/add_credits',
    {
      schema: {
        tags: ['admin'],
        summary: 'Add (or with a negative amount, remove) credits through the ledger',
        body: Type.Object(
          {
            user_id: Type.Optional(Type.String()),
            api_key: Type.Optional(Type.String()),
            credits: Type.Number({ minimum: -1_000_000, maximum: 1_000_000 }),
            reason: Type.Optional(Type.String({ maxLength: 500 })),
            idempotency_key: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
          },
          { additionalProperties: false },
        ),
      },
      config: { auth: 'admin', permission: 'credits:write' },
    },
    async (request) => {
      const b = request.body as {
        user_id?: string;
        api_key?: string;
        credits: number;
        reason?: string;
        idempotency_key?: string;
      };
      const amount = usdToMicros(b.credits);
      if (amount === 0) throw badRequest('credits must not be zero', 'credits');
      const user = await accounts.resolveUser(b);
      const r = await billing.post(
        {
          userId: user.id,
          kind: 'admin_credit',
          amount,
          description: b.reason ?? null,
          idempotencyKey: b.idempotency_key ? `admin_credit:${b.idempotency_key}` : null,
          reference: request.principal?.userId ?? 'admin_key',
        },
        Date.now(),
      );
      if (!r)
        throw new GatewayError(409, 'This idempotency_key was already applied', {
          code: 'duplicate_request',
        });
      await audit?.recordRequest(request, {
        userId: user.id,
        action: 'credits.admin_adjust',
        resourceType: 'user',
        resourceId: user.id,
        details: { amount_usd: microsToUsd(amount), ledger_id: r.ledgerId, reason: b.reason ?? null },
      });
      return {
        success: true,
        user_id: user.id,
        added: microsToUsd(amount),
        new_balance: microsToUsd(r.balanceAfter),
        ledger_id: r.ledgerId,
      };
    },
  );
}
