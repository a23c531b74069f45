import type { Kysely } from 'kysely';
import type { Dialect } from '../database.js';
import { serialId, serialType } from './types.js';

/**
 * Commerce: a trial credit bucket beside the paid balance, plans held by users, trials, Stripe
 * payments and events, coupons, referral rewards, debts left by refunds, scheduler leases.
 * Every "once" is a unique constraint.
 */
export async function up(db: Kysely<any>, dialect: Dialect): Promise<void> {
  // Trial credits are a second bucket: users.trial_balance_micros == Σ ledger rows with bucket 'trial'.
  await db.schema
    .alterTable('users')
    .addColumn('trial_balance_micros', 'bigint', (c) => c.notNull().defaultTo(0))
    .execute();
  await db.schema
    .alterTable('ledger')
    .addColumn('bucket', 'text', (c) => c.notNull().defaultTo('paid'))
    .execute();

  await db.schema
    .createTable('user_plans')
    .addColumn('user_id', 'text', (c) => c.primaryKey().references('users.id'))
    .addColumn('plan_id', 'text', (c) => c.notNull())
    .addColumn('source', 'text', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('interval', 'text', (c) => c.notNull().defaultTo('month'))
    .addColumn('stripe_subscription_id', 'text', (c) => c.unique())
    .addColumn('pending_plan_id', 'text')
    .addColumn('cancel_at_period_end', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('current_period_start', 'bigint', (c) => c.notNull())
    .addColumn('current_period_end', 'bigint')
    .addColumn('next_credit_at', 'bigint')
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .execute();

  await db.schema
    .createTable('trials')
    .addColumn('user_id', 'text', (c) => c.primaryKey().references('users.id'))
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('started_at', 'bigint', (c) => c.notNull())
    .addColumn('ends_at', 'bigint', (c) => c.notNull())
    .addColumn('credits_micros', 'bigint', (c) => c.notNull())
    .addColumn('tokens_limit', 'bigint', (c) => c.notNull())
    .addColumn('requests_limit', 'bigint', (c) => c.notNull())
    .addColumn('tokens_used', 'bigint', (c) => c.notNull().defaultTo(0))
    .addColumn('requests_used', 'bigint', (c) => c.notNull().defaultTo(0))
    .addColumn('credits_expired', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('reminder_sent', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('ended_at', 'bigint')
    .addColumn('end_reason', 'text')
    .execute();
  await db.schema.createIndex('trials_status_end').on('trials').columns(['status', 'ends_at']).execute();

  await db.schema
    .createTable('payments')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('user_id', 'text', (c) => c.notNull().references('users.id'))
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('plan_id', 'text')
    .addColumn('package_id', 'text')
    .addColumn('coupon_id', 'text')
    .addColumn('currency', 'text', (c) => c.notNull().defaultTo('usd'))
    .addColumn('price_micros', 'bigint', (c) => c.notNull())
    .addColumn('charge_micros', 'bigint', (c) => c.notNull())
    .addColumn('credits_micros', 'bigint', (c) => c.notNull())
    .addColumn('paid_micros', 'bigint', (c) => c.notNull().defaultTo(0))
    .addColumn('granted_micros', 'bigint', (c) => c.notNull().defaultTo(0))
    .addColumn('refunded_micros', 'bigint', (c) => c.notNull().defaultTo(0))
    .addColumn('clawed_back_micros', 'bigint', (c) => c.notNull().defaultTo(0))
    .addColumn('stripe_session_id', 'text', (c) => c.unique())
    .addColumn('stripe_payment_intent_id', 'text', (c) => c.unique())
    .addColumn('stripe_invoice_id', 'text', (c) => c.unique())
    .addColumn('stripe_subscription_id', 'text')
    .addColumn('checkout_url', 'text')
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .addColumn('paid_at', 'bigint')
    .execute();
  await db.schema.createIndex('payments_user').on('payments').columns(['user_id', 'created_at']).execute();
  await db.schema
    .createIndex('payments_subscription')
    .on('payments')
    .column('stripe_subscription_id')
    .execute();

  await db.schema
    .createTable('stripe_events')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('type', 'text', (c) => c.notNull())
    .addColumn('outcome', 'text')
    .addColumn('received_at', 'bigint', (c) => c.notNull())
    .execute();

  await db.schema
    .createTable('coupons')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('code', 'text', (c) => c.notNull().unique())
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('value', 'bigint', (c) => c.notNull())
    .addColumn('user_id', 'text')
    .addColumn('valid_from', 'bigint')
    .addColumn('valid_until', 'bigint')
    .addColumn('max_uses', 'bigint')
    .addColumn('uses', 'bigint', (c) => c.notNull().defaultTo(0))
    .addColumn('once_per_user', 'integer', (c) => c.notNull().defaultTo(1))
    .addColumn('new_users_only', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('plan_ids', 'text')
    .addColumn('is_active', 'integer', (c) => c.notNull().defaultTo(1))
    .addColumn('description', 'text')
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .execute();

  await db.schema
    .createTable('coupon_redemptions')
    .addColumn('id', serialType(dialect), serialId(dialect))
    .addColumn('coupon_id', 'text', (c) => c.notNull().references('coupons.id'))
    .addColumn('user_id', 'text', (c) => c.notNull().references('users.id'))
    // user_id for once-per-user coupons, else a unique id: the constraint is the guard.
    .addColumn('uniqueness', 'text', (c) => c.notNull())
    .addColumn('amount_micros', 'bigint', (c) => c.notNull())
    .addColumn('payment_id', 'text')
    .addColumn('ledger_id', 'bigint')
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema
    .createIndex('coupon_redemptions_once')
    .unique()
    .on('coupon_redemptions')
    .columns(['coupon_id', 'uniqueness'])
    .execute();
  await db.schema
    .createIndex('coupon_redemptions_user')
    .on('coupon_redemptions')
    .columns(['user_id', 'created_at'])
    .execute();

  await db.schema
    .createTable('referral_rewards')
    .addColumn('id', serialType(dialect), serialId(dialect))
    .addColumn('referrer_user_id', 'text', (c) => c.notNull().references('users.id'))
    .addColumn('referred_user_id', 'text', (c) => c.notNull().unique().references('users.id'))
    .addColumn('code', 'text', (c) => c.notNull())
    .addColumn('slot', 'integer', (c) => c.notNull())
    .addColumn('payment_id', 'text', (c) => c.notNull())
    .addColumn('amount_micros', 'bigint', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema
    .createIndex('referral_rewards_slot')
    .unique()
    .on('referral_rewards')
    .columns(['referrer_user_id', 'slot'])
    .execute();

  await db.schema
    .createTable('debts')
    .addColumn('id', serialType(dialect), serialId(dialect))
    .addColumn('user_id', 'text', (c) => c.notNull().references('users.id'))
    .addColumn('cause', 'text', (c) => c.notNull().unique())
    .addColumn('amount_micros', 'bigint', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .execute();

  await db.schema
    .createTable('job_leases')
    .addColumn('name', 'text', (c) => c.primaryKey())
    .addColumn('holder', 'text', (c) => c.notNull())
    .addColumn('expires_at', 'bigint', (c) => c.notNull())
    .execute();
}
