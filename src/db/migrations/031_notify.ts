import type { Kysely } from 'kysely';
import type { Dialect } from '../database.js';
import { serialId, serialType } from './types.js';

/** E-mail outbox (each mail once, by dedupe key; retried with back-off) and per-user notification preferences. */
export async function up(db: Kysely<any>, dialect: Dialect): Promise<void> {
  await db.schema
    .createTable('email_outbox')
    .addColumn('id', serialType(dialect), serialId(dialect))
    .addColumn('dedupe_key', 'text', (c) => c.notNull().unique())
    .addColumn('user_id', 'text')
    .addColumn('to_address', 'text', (c) => c.notNull())
    .addColumn('template', 'text', (c) => c.notNull())
    .addColumn('subject', 'text', (c) => c.notNull())
    .addColumn('html', 'text', (c) => c.notNull())
    .addColumn('text', 'text', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('next_attempt_at', 'bigint', (c) => c.notNull())
    .addColumn('locked_until', 'bigint')
    .addColumn('last_error', 'text')
    .addColumn('provider_id', 'text')
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('sent_at', 'bigint')
    .execute();
  await db.schema
    .createIndex('email_outbox_due')
    .on('email_outbox')
    .columns(['status', 'next_attempt_at'])
    .execute();

  await db.schema
    .createTable('notification_prefs')
    .addColumn('user_id', 'text', (c) => c.primaryKey().references('users.id'))
    .addColumn('email_enabled', 'integer', (c) => c.notNull().defaultTo(1))
    .addColumn('low_balance_threshold_micros', 'bigint')
    .addColumn('low_balance_alerted', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('trial_reminders', 'integer', (c) => c.notNull().defaultTo(1))
    .addColumn('payment_receipts', 'integer', (c) => c.notNull().defaultTo(1))
    .addColumn('plan_changes', 'integer', (c) => c.notNull().defaultTo(1))
    .addColumn('security_alerts', 'integer', (c) => c.notNull().defaultTo(1))
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .execute();
}
