import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { requireUser } from '../../http/auth.js';
import type { PaymentsService } from './service.js';

const Checkout = Type.Object(
  {
    type: Type.Optional(Type.Union([Type.Literal('topup'), Type.Literal('subscription')])),
    amount: Type.Optional(Type.Number({ exclusiveMinimum: 0, maximum: 1_000_000, description: 'USD' })),
    package_id: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
    plan_id: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
    interval: Type.Optional(Type.Union([Type.Literal('month'), Type.Literal('year')])),
    coupon_code: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
  },
  { additionalProperties: false },
);

/** Checkout, the Stripe webhook and the caller's payments. */
export function paymentRoutes(app: FastifyInstance, payments: PaymentsService): void {
  app.post(
    '/payments/checkout',
    {
      schema: {
        tags: ['payments'],
        summary:
          'Stripe Checkout for a credit top-up (amount or package_id) or a plan subscription (plan_id)',
        body: Checkout,
      },
      config: { auth: 'user' },
    },
    async (request) => {
      const { userId } = requireUser(request);
      const b = request.body as {
        type?: 'topup' | 'subscription';
        amount?: number;
        package_id?: string;
        plan_id?: string;
        interval?: 'month' | 'year';
        coupon_code?: string;
      };
      const type = b.type ?? (b.plan_id ? 'subscription' : 'topup');
      return payments.checkout(
        userId,
        {
          type,
          amount: b.amount,
          packageId: b.package_id,
          planId: b.plan_id,
          interval: b.interval,
          couponCode: b.coupon_code,
        },
        Date.now(),
      );
    },
  );
  app.get(
    '/user/payments',
    {
      schema: {
        tags: ['payments'],
        summary: 'The caller’s payments, newest first',
        querystring: Type.Object({
          limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 200 })),
          offset: Type.Optional(Type.Integer({ minimum: 0 })),
        }),
      },
      config: { auth: 'user' },
    },
    async (request) => {
      const q = request.query as { limit?: number; offset?: number };
      return { payments: await payments.list(requireUser(request).userId, q.limit ?? 50, q.offset ?? 0) };
    },
  );
  app.get(
    '/payments/:id',
    {
      schema: {
        tags: ['payments'],
        summary: 'One of the caller’s payments',
        params: Type.Object({ id: Type.String({ maxLength: 100 }) }),
      },
      config: { auth: 'user' },
    },
    async (request) => payments.get((request.params as { id: string }).id, requireUser(request).userId),
  );

  // The signature covers the exact bytes, so this route keeps the raw body (encapsulated parser).
  app.register(async (scope) => {
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: 1024 * 1024 }, (_req, body, done) =>
      done(null, body),
    );
    scope.post(
      '/stripe/webhook',
      {
        schema: { tags: ['payments'], summary: 'Stripe webhook (signature verified)' },
        config: { auth: 'public' },
      },
      async (request) => {
        const sig = request.headers['stripe-signature'];
        const raw = Buffer.isBuffer(request.body) ? request.body : Buffer.from(String(request.body ?? ''));
        return payments.webhook(raw, typeof sig === 'string' ? sig : undefined, Date.now());
      },
    );
  });
}
