import type { FastifyBaseLogger } from 'fastify';
import type { Kysely, Selectable } from 'kysely';
import type { Database, PaymentsTable } from '../../db/schema.js';
import { GatewayError } from '../../lib/errors.js';
import { newId } from '../../lib/ids.js';
import { microsToUsd } from '../../lib/money.js';
import type { CommerceConfig } from '../config.js';
import type { CouponsService } from '../coupons.js';
import type { PlansService } from '../plans.js';
import { microsToCents, type Stripe } from './stripe.js';
import type { StripeWebhooks } from './webhook.js';

export type PaymentRow = Selectable<PaymentsTable>;

export interface CheckoutRequest {
  type: 'topup' | 'subscription';
  amount?: number;
  packageId?: string;
  planId?: string;
  interval?: 'month' | 'year';
  couponCode?: string;
}

/** Smallest charge Stripe accepts in USD. */
const MIN_CHARGE_MICROS = 500_000;

export function paymentJson(p: PaymentRow) {
  return {
    id: p.id,
    kind: p.kind,
    status: p.status,
    plan_id: p.plan_id,
    package_id: p.package_id,
    currency: p.currency,
    price: microsToUsd(p.price_micros),
    amount: microsToUsd(p.charge_micros),
    credits: microsToUsd(p.credits_micros),
    amount_paid: microsToUsd(p.paid_micros),
    credits_granted: microsToUsd(p.granted_micros),
    amount_refunded: microsToUsd(p.refunded_micros),
    credits_taken_back: microsToUsd(p.clawed_back_micros),
    checkout_url: p.status === 'pending' ? p.checkout_url : null,
    stripe_session_id: p.stripe_session_id,
    created_at: new Date(p.created_at).toISOString(),
    paid_at: p.paid_at === null ? null : new Date(p.paid_at).toISOString(),
  };
}

/**
 * Stripe payments: Checkout sessions for top-ups and subscriptions (the gateway's own payment row
 * records what was asked and what it buys), the caller's payments, and the webhook (webhook.ts).
 */
export class PaymentsService {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly plans: PlansService,
    private readonly coupons: CouponsService,
    private readonly stripe: Stripe | null,
    private readonly cfg: CommerceConfig,
    private readonly log: FastifyBaseLogger,
    private readonly webhooks: StripeWebhooks,
  ) {}

  private requireStripe(): Stripe {
    if (!this.stripe)
      throw new GatewayError(503, 'Payments are not configured (STRIPE_SECRET_KEY)', {
        code: 'payments_disabled',
      });
    return this.stripe;
  }

  async checkout(userId: string, req: CheckoutRequest, now: number) {
    const stripe = this.requireStripe();
    let price: number;
    let credits: number;
    let plan = null as ReturnType<PlansService['get']> | null;
    let name: string;
    if (req.type === 'topup') {
      if (req.packageId !== undefined) {
        const pkg = this.cfg.packages.find((p) => p.id === req.packageId);
        if (!pkg)
          throw new GatewayError(400, `Unknown credit package "${req.packageId}"`, { param: 'package_id' });
        price = pkg.priceMicros;
        credits = pkg.creditsMicros;
        name = pkg.name;
      } else if (req.amount !== undefined) {
        price = Math.round(req.amount * 100) * 10_000;
        if (price < this.cfg.topupMinMicros || price > this.cfg.topupMaxMicros)
          throw new GatewayError(
            400,
            `amount must be between ${microsToUsd(this.cfg.topupMinMicros)} and ${microsToUsd(this.cfg.topupMaxMicros)} USD`,
            { param: 'amount', code: 'amount_out_of_range' },
          );
        credits = price;
        name = `$${microsToUsd(price).toFixed(2)} of credits`;
      } else {
        throw new GatewayError(400, 'Give amount or package_id for a top-up', { param: 'amount' });
      }
    } else {
      plan = req.planId ? (this.plans.get(req.planId) ?? null) : null;
      if (!plan) throw new GatewayError(400, `Unknown plan "${req.planId ?? ''}"`, { param: 'plan_id' });
      price = req.interval === 'year' ? plan.priceYearlyMicros : plan.priceMonthlyMicros;
      if (price <= 0)
        throw new GatewayError(400, `The plan "${plan.id}" is free; nothing to pay`, { param: 'plan_id' });
      credits = plan.monthlyCreditsMicros;
      name = `${plan.name} plan (${req.interval ?? 'month'}ly)`;
    }
    let charge = price;
    let couponId: string | null = null;
    if (req.couponCode) {
      const d = await this.coupons.discountFor(userId, req.couponCode, price, now, plan?.id);
      charge = price - d.discountMicros;
      couponId = d.coupon.id;
      if (charge < MIN_CHARGE_MICROS)
        throw new GatewayError(400, 'The discounted amount is below the minimum charge of $0.50', {
          param: 'coupon_code',
          code: 'amount_too_small',
        });
    }
    charge = microsToCents(charge) * 10_000;
    const id = newId('pay');
    const row: PaymentRow = {
      id,
      user_id: userId,
      kind: req.type,
      status: 'pending',
      plan_id: plan?.id ?? null,
      package_id: req.packageId ?? null,
      coupon_id: couponId,
      currency: 'usd',
      price_micros: price,
      charge_micros: charge,
      credits_micros: credits,
      paid_micros: 0,
      granted_micros: 0,
      refunded_micros: 0,
      clawed_back_micros: 0,
      stripe_session_id: null,
      stripe_payment_intent_id: null,
      stripe_invoice_id: null,
      stripe_subscription_id: null,
      checkout_url: null,
      created_at: now,
      updated_at: now,
      paid_at: null,
    };
    await this.db.insertInto('payments').values(row).execute();
    const email = await this.db
      .selectFrom('users')
      .select('email')
      .where('id', '=', userId)
      .executeTakeFirst();
    let session: Stripe.Checkout.Session;
    try {
      session = await stripe.checkout.sessions.create(
        {
          mode: req.type === 'topup' ? 'payment' : 'subscription',
          client_reference_id: id,
          ...(email?.email ? { customer_email: email.email } : {}),
          line_items: [
            {
              quantity: 1,
              price_data: {
                currency: 'usd',
                unit_amount: microsToCents(charge),
                product_data: { name },
                ...(req.type === 'subscription' ? { recurring: { interval: req.interval ?? 'month' } } : {}),
              },
            },
          ],
          // For the operator's dashboard only; the webhook never reads it.
          metadata: { payment_id: id },
          success_url: this.cfg.stripe.successUrl,
          cancel_url: this.cfg.stripe.cancelUrl,
        },
        { idempotencyKey: `checkout:${id}` },
      );
    } catch (err) {
      this.log.warn({ err, paymentId: id }, 'stripe checkout failed');
      await this.db
        .updateTable('payments')
        .set({ status: 'failed', updated_at: Date.now() })
        .where('id', '=', id)
        .execute();
      throw new GatewayError(502, 'The payment provider did not create a checkout session; try again', {
        type: 'upstream_error',
        code: 'checkout_failed',
      });
    }
    await this.db
      .updateTable('payments')
      .set({ stripe_session_id: session.id, checkout_url: session.url ?? null, updated_at: Date.now() })
      .where('id', '=', id)
      .execute();
    return {
      payment_id: id,
      session_id: session.id,
      checkout_url: session.url,
      url: session.url,
      amount: microsToUsd(charge),
      credits: microsToUsd(credits),
      ...(plan ? { plan_id: plan.id } : {}),
    };
  }

  async list(userId: string, limit: number, offset: number) {
    const rows = await this.db
      .selectFrom('payments')
      .selectAll()
      .where('user_id', '=', userId)
      .orderBy('created_at', 'desc')
      .limit(limit)
      .offset(offset)
      .execute();
    return rows.map(paymentJson);
  }

  /** Owner only: another user's payment is "not found", not "forbidden" (no id probing). */
  async get(id: string, userId: string | null) {
    const p = await this.db.selectFrom('payments').selectAll().where('id', '=', id).executeTakeFirst();
    if (!p || (userId !== null && p.user_id !== userId))
      throw new GatewayError(404, 'No such payment', { code: 'payment_not_found' });
    return paymentJson(p);
  }

  /** Verify, record once, act (see StripeWebhooks). */
  webhook(raw: Buffer, signature: string | undefined, now: number) {
    return this.webhooks.handle(this.requireStripe(), raw, signature, now);
  }
}
