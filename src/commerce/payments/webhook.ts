import type { Kysely } from 'kysely';
import type { BillingStore } from '../../billing/store.js';
import { isUniqueViolation } from '../../billing/store.js';
import type { Dialect } from '../../db/database.js';
import type { Database } from '../../db/schema.js';
import { GatewayError } from '../../lib/errors.js';
import { newId } from '../../lib/ids.js';
import { microsToUsd } from '../../lib/money.js';
import type { Notifier } from '../../notify/service.js';
import type { CommerceConfig } from '../config.js';
import type { CouponsService } from '../coupons.js';
import type { PlansService } from '../plans.js';
import type { ReferralsService } from '../referrals.js';
import type { TrialsService } from '../trials.js';
import type { PaymentRow } from './service.js';
import { centsToMicros, type Stripe } from './stripe.js';

class DuplicateEvent extends Error {}

/**
 * The Stripe webhook. Credits are granted only from the gateway's own payment row (found by the
 * checkout session id it created) and the amount Stripe says was paid — never from metadata. Each
 * event id is recorded once (primary key) in the transaction that acts on it, and each payment is
 * credited once (conditional status change + ledger idempotency key).
 */
export class StripeWebhooks {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly dialect: Dialect,
    private readonly billing: BillingStore,
    private readonly plans: PlansService,
    private readonly trials: TrialsService,
    private readonly coupons: CouponsService,
    private readonly referrals: ReferralsService,
    private readonly notifier: Notifier,
    private readonly cfg: CommerceConfig,
  ) {}

  /** Verify, record once, act. Throws 400 on a bad signature (nothing changes). */
  async handle(
    stripe: Stripe,
    raw: Buffer,
    signature: string | undefined,
    now: number,
  ): Promise<{ received: true; duplicate: boolean; outcome: string }> {
    const secret = this.cfg.stripe.webhookSecret;
    if (!secret)
      throw new GatewayError(503, 'STRIPE_WEBHOOK_SECRET is not set', { code: 'webhook_disabled' });
    if (!signature)
      throw new GatewayError(400, 'Missing Stripe-Signature header', { code: 'invalid_signature' });
    let event: Stripe.Event;
    try {
      event = stripe.webhooks.constructEvent(raw, signature, secret);
    } catch {
      throw new GatewayError(400, 'Invalid Stripe signature', { code: 'invalid_signature' });
    }
    const after: Array<() => void> = [];
    try {
      const outcome = await this.db.transaction().execute(async (trx) => {
        try {
          await trx
            .insertInto('stripe_events')
            .values({ id: event.id, type: event.type, outcome: null, received_at: now })
            .execute();
        } catch (err) {
          if (isUniqueViolation(err)) throw new DuplicateEvent();
          throw err;
        }
        const o = await this.apply(event, now, trx, after);
        await trx.updateTable('stripe_events').set({ outcome: o }).where('id', '=', event.id).execute();
        return o;
      });
      for (const f of after) f();
      return { received: true, duplicate: false, outcome };
    } catch (err) {
      if (err instanceof DuplicateEvent) return { received: true, duplicate: true, outcome: 'duplicate' };
      throw err;
    }
  }

  private async apply(
    event: Stripe.Event,
    now: number,
    trx: Kysely<Database>,
    after: Array<() => void>,
  ): Promise<string> {
    const obj = event.data.object as any;
    switch (event.type) {
      case 'checkout.session.completed':
      case 'checkout.session.async_payment_succeeded':
        return this.sessionPaid(obj, now, trx, after);
      case 'checkout.session.expired': {
        const r = await trx
          .updateTable('payments')
          .set({ status: 'expired', updated_at: now })
          .where('stripe_session_id', '=', String(obj.id))
          .where('status', '=', 'pending')
          .executeTakeFirst();
        return Number(r.numUpdatedRows) ? 'expired' : 'ignored';
      }
      case 'invoice.paid':
      case 'invoice.payment_succeeded':
        return this.invoicePaid(obj, now, trx, after);
      case 'customer.subscription.updated':
        return this.subscriptionUpdated(obj, now, trx);
      case 'customer.subscription.deleted':
        return this.subscriptionDeleted(obj, now, trx, after);
      case 'charge.refunded':
        return this.refunded(obj, now, trx);
      default:
        return 'ignored';
    }
  }

  private async sessionPaid(
    s: any,
    now: number,
    trx: Kysely<Database>,
    after: Array<() => void>,
  ): Promise<string> {
    let q = trx.selectFrom('payments').selectAll().where('stripe_session_id', '=', String(s.id));
    if (this.dialect === 'postgres') q = q.forUpdate();
    const p = await q.executeTakeFirst();
    if (!p) return 'unknown_session';
    if (s.payment_status !== 'paid' && s.payment_status !== 'no_payment_required') return 'not_paid';
    if (p.status !== 'pending') return 'already_paid';
    const paid = centsToMicros(Number(s.amount_total ?? 0));
    const pi = typeof s.payment_intent === 'string' ? s.payment_intent : (s.payment_intent?.id ?? null);
    const sub = typeof s.subscription === 'string' ? s.subscription : (s.subscription?.id ?? null);
    const inv = typeof s.invoice === 'string' ? s.invoice : (s.invoice?.id ?? null);
    if (p.kind === 'subscription') {
      const plan = this.plans.get(p.plan_id ?? '');
      if (plan) {
        const prev = await this.plans.assign(
          p.user_id,
          plan.id,
          { source: 'stripe', now, subscriptionId: sub, scheduleCredits: false, interval: 'month' },
          trx,
        );
        if (prev !== plan.id)
          await this.notifier.notify(
            p.user_id,
            'plan_changed',
            { previous_plan: prev, plan_name: plan.name },
            `plan_changed:${p.id}`,
            now,
            trx,
          );
        after.push(() => this.plans.invalidate(p.user_id));
      }
    }
    return this.grant(p, paid, { pi, sub, inv }, now, trx, after);
  }

  /** Mark paid and credit once: proportional to what was paid when less than the charge. */
  private async grant(
    p: PaymentRow,
    paid: number,
    ids: { pi: string | null; sub: string | null; inv: string | null },
    now: number,
    trx: Kysely<Database>,
    after: Array<() => void>,
  ): Promise<string> {
    const credits =
      paid >= p.charge_micros ? p.credits_micros : Math.floor((p.credits_micros * paid) / p.charge_micros);
    const r = await trx
      .updateTable('payments')
      .set({
        status: 'paid',
        paid_micros: paid,
        granted_micros: credits,
        paid_at: now,
        updated_at: now,
        stripe_payment_intent_id: ids.pi,
        stripe_subscription_id: ids.sub ?? p.stripe_subscription_id,
        stripe_invoice_id: ids.inv ?? p.stripe_invoice_id,
      })
      .where('id', '=', p.id)
      .where('status', '=', 'pending')
      .executeTakeFirst();
    if (Number(r.numUpdatedRows) !== 1) return 'already_paid';
    let balance = null as number | null;
    if (credits > 0) {
      const e = await this.billing.post(
        {
          userId: p.user_id,
          kind: p.kind === 'topup' ? 'purchase' : 'plan_credit',
          amount: credits,
          reference: `payment:${p.id}`,
          idempotencyKey: `payment:${p.id}`,
          description: p.kind === 'topup' ? 'credit purchase' : `plan ${p.plan_id} monthly credits`,
        },
        now,
        trx,
      );
      balance = e?.balanceAfter ?? null;
    }
    if (p.coupon_id)
      await this.coupons.recordDiscountUse(
        p.coupon_id,
        p.user_id,
        p.id,
        p.price_micros - p.charge_micros,
        now,
        trx,
      );
    await this.trials.convert(p.user_id, now, trx);
    await this.referrals.onPurchase(p.user_id, p.id, paid, now, trx);
    if (balance === null)
      balance =
        (
          await trx
            .selectFrom('users')
            .select('balance_micros')
            .where('id', '=', p.user_id)
            .executeTakeFirst()
        )?.balance_micros ?? 0;
    await this.notifier.notify(
      p.user_id,
      'payment_receipt',
      {
        payment_id: p.id,
        amount: microsToUsd(paid),
        credits: microsToUsd(credits),
        balance: microsToUsd(balance),
      },
      `receipt:${p.id}`,
      now,
      trx,
    );
    after.push(() => this.plans.invalidate(p.user_id));
    return 'credited';
  }

  private subscriptionIdOf(inv: any): string | null {
    const s = inv.subscription ?? inv.parent?.subscription_details?.subscription ?? null;
    return typeof s === 'string' ? s : (s?.id ?? null);
  }

  /** A renewal invoice: the plan's monthly credits (the first period is credited with the checkout). */
  private async invoicePaid(
    inv: any,
    now: number,
    trx: Kysely<Database>,
    after: Array<() => void>,
  ): Promise<string> {
    const subId = this.subscriptionIdOf(inv);
    if (!subId) return 'ignored';
    const existing = await trx
      .selectFrom('payments')
      .select('id')
      .where('stripe_invoice_id', '=', String(inv.id))
      .executeTakeFirst();
    if (existing) return 'already_paid';
    if (inv.billing_reason === 'subscription_create') return 'first_invoice_credited_at_checkout';
    const up = await this.plans.row((await this.userOfSubscription(subId, trx)) ?? '', trx);
    if (!up) return 'unknown_subscription';
    let planId = up.plan_id;
    if (up.pending_plan_id && this.plans.get(up.pending_plan_id)) {
      const prevName = this.plans.get(planId)?.name ?? planId;
      planId = up.pending_plan_id;
      await trx
        .updateTable('user_plans')
        .set({ plan_id: planId, pending_plan_id: null, current_period_start: now, updated_at: now })
        .where('user_id', '=', up.user_id)
        .execute();
      await this.notifier.notify(
        up.user_id,
        'plan_changed',
        { previous_plan: prevName, plan_name: this.plans.get(planId)!.name },
        `plan_changed:${inv.id}`,
        now,
        trx,
      );
    }
    const plan = this.plans.get(planId);
    if (!plan) return 'unknown_plan';
    const paid = centsToMicros(Number(inv.amount_paid ?? 0));
    const row: PaymentRow = {
      id: newId('pay'),
      user_id: up.user_id,
      kind: 'invoice',
      status: 'pending',
      plan_id: plan.id,
      package_id: null,
      coupon_id: null,
      currency: String(inv.currency ?? 'usd'),
      price_micros: paid,
      charge_micros: paid,
      credits_micros: plan.monthlyCreditsMicros,
      paid_micros: 0,
      granted_micros: 0,
      refunded_micros: 0,
      clawed_back_micros: 0,
      stripe_session_id: null,
      stripe_payment_intent_id: null,
      stripe_invoice_id: String(inv.id),
      stripe_subscription_id: subId,
      checkout_url: null,
      created_at: now,
      updated_at: now,
      paid_at: null,
    };
    await trx.insertInto('payments').values(row).execute();
    const pi = typeof inv.payment_intent === 'string' ? inv.payment_intent : null;
    return this.grant(row, paid, { pi, sub: subId, inv: String(inv.id) }, now, trx, after);
  }

  private async userOfSubscription(subId: string, trx: Kysely<Database>): Promise<string | null> {
    const up = await trx
      .selectFrom('user_plans')
      .select('user_id')
      .where('stripe_subscription_id', '=', subId)
      .executeTakeFirst();
    if (up) return up.user_id;
    const p = await trx
      .selectFrom('payments')
      .select('user_id')
      .where('stripe_subscription_id', '=', subId)
      .executeTakeFirst();
    return p?.user_id ?? null;
  }

  /** Plan changes made in Stripe take effect at the end of the period (the next renewal invoice). */
  private async subscriptionUpdated(sub: any, now: number, trx: Kysely<Database>): Promise<string> {
    const up = await trx
      .selectFrom('user_plans')
      .selectAll()
      .where('stripe_subscription_id', '=', String(sub.id))
      .executeTakeFirst();
    if (!up) return 'unknown_subscription';
    const item = sub.items?.data?.[0];
    const priceId = item?.price?.id;
    const target = priceId ? this.plans.byStripePrice(String(priceId)) : undefined;
    const periodEnd =
      Number(sub.current_period_end ?? item?.current_period_end ?? 0) * 1000 || up.current_period_end;
    await trx
      .updateTable('user_plans')
      .set({
        pending_plan_id: target && target.id !== up.plan_id ? target.id : null,
        cancel_at_period_end: sub.cancel_at_period_end ? 1 : 0,
        current_period_end: periodEnd,
        status: sub.status === 'past_due' || sub.status === 'unpaid' ? 'past_due' : 'active',
        updated_at: now,
      })
      .where('user_id', '=', up.user_id)
      .execute();
    this.plans.invalidate(up.user_id);
    return target && target.id !== up.plan_id ? `plan_change_pending:${target.id}` : 'updated';
  }

  private async subscriptionDeleted(
    sub: any,
    now: number,
    trx: Kysely<Database>,
    after: Array<() => void>,
  ): Promise<string> {
    const up = await trx
      .selectFrom('user_plans')
      .selectAll()
      .where('stripe_subscription_id', '=', String(sub.id))
      .executeTakeFirst();
    if (!up || up.status === 'canceled') return 'ignored';
    await trx
      .updateTable('user_plans')
      .set({ status: 'canceled', pending_plan_id: null, next_credit_at: null, updated_at: now })
      .where('user_id', '=', up.user_id)
      .execute();
    await this.notifier.notify(
      up.user_id,
      'plan_changed',
      {
        previous_plan: this.plans.get(up.plan_id)?.name ?? up.plan_id,
        plan_name: this.plans.defaultPlan().name,
      },
      `plan_canceled:${sub.id}`,
      now,
      trx,
    );
    after.push(() => this.plans.invalidate(up.user_id));
    return 'canceled';
  }

  /**
   * Refund: take back the refunded share of the credits granted, through the ledger. When the
   * balance cannot cover it the balance goes negative and a debt row records why.
   */
  private async refunded(charge: any, now: number, trx: Kysely<Database>): Promise<string> {
    const pi = typeof charge.payment_intent === 'string' ? charge.payment_intent : charge.payment_intent?.id;
    if (!pi) return 'ignored';
    let q = trx.selectFrom('payments').selectAll().where('stripe_payment_intent_id', '=', pi);
    if (this.dialect === 'postgres') q = q.forUpdate();
    const p = await q.executeTakeFirst();
    if (!p || p.paid_micros <= 0) return 'unknown_payment';
    const refunded = Math.min(p.paid_micros, centsToMicros(Number(charge.amount_refunded ?? 0)));
    const target = Math.min(p.granted_micros, Math.ceil((p.granted_micros * refunded) / p.paid_micros));
    const delta = target - p.clawed_back_micros;
    if (delta <= 0) return 'nothing_to_take_back';
    const r = await trx
      .updateTable('payments')
      .set({
        refunded_micros: refunded,
        clawed_back_micros: target,
        status: refunded >= p.paid_micros ? 'refunded' : 'partially_refunded',
        updated_at: now,
      })
      .where('id', '=', p.id)
      .where('clawed_back_micros', '=', p.clawed_back_micros)
      .executeTakeFirst();
    if (Number(r.numUpdatedRows) !== 1) return 'already_applied';
    const e = await this.billing.post(
      {
        userId: p.user_id,
        kind: 'refund',
        amount: -delta,
        reference: `payment:${p.id}`,
        idempotencyKey: `refund:${p.id}:${target}`,
        description: `refund of $${microsToUsd(refunded).toFixed(2)}`,
      },
      now,
      trx,
    );
    if (e && e.balanceAfter < 0)
      await trx
        .insertInto('debts')
        .values({
          user_id: p.user_id,
          cause: `refund:${p.id}:${target}`,
          amount_micros: Math.min(delta, -e.balanceAfter),
          created_at: now,
        })
        .execute();
    return 'credits_taken_back';
  }
}
