import type { Kysely } from 'kysely';
import { newReferralCode } from '../../accounts/service.js';
import type { Dialect } from '../database.js';
import { serialId, serialType } from './types.js';

/** Accounts and access: referral columns, key rotation grace, custom roles, the audit log. */
export async function up(db: Kysely<any>, dialect: Dialect): Promise<void> {
  // Referral columns are shared with commerce (issue 5): it reads `referred_by_code` and `referral_code`.
  await db.schema.alterTable('users').addColumn('referral_code', 'text').execute();
  await db.schema.alterTable('users').addColumn('referred_by_code', 'text').execute();
  await db.schema.alterTable('users').addColumn('display_name', 'text').execute();
  await db.schema.alterTable('users').addColumn('deleted_at', 'bigint').execute();
  await db.schema.createIndex('users_referral_code').unique().on('users').column('referral_code').execute();
  // Users created before this migration get their code too.
  const existing = await db.selectFrom('users').select('id').where('referral_code', 'is', null).execute();
  for (const u of existing)
    await db.updateTable('users').set({ referral_code: newReferralCode() }).where('id', '=', u.id).execute();

  // Rotation with a grace period: the previous secret's HMAC keeps working until previous_expires_at.
  await db.schema.alterTable('api_keys').addColumn('previous_key_hash', 'text').execute();
  await db.schema.alterTable('api_keys').addColumn('previous_expires_at', 'bigint').execute();
  await db.schema
    .createIndex('api_keys_previous_hash')
    .unique()
    .on('api_keys')
    .column('previous_key_hash')
    .execute();

  await db.schema
    .createTable('roles')
    .addColumn('name', 'text', (c) => c.primaryKey())
    .addColumn('permissions', 'text', (c) => c.notNull())
    .addColumn('description', 'text')
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .execute();

  await db.schema
    .createTable('audit_logs')
    .addColumn('id', serialType(dialect), serialId(dialect))
    .addColumn('user_id', 'text')
    .addColumn('actor', 'text', (c) => c.notNull())
    .addColumn('action', 'text', (c) => c.notNull())
    .addColumn('resource_type', 'text')
    .addColumn('resource_id', 'text')
    .addColumn('details', 'text')
    .addColumn('ip', 'text')
    .addColumn('user_agent', 'text')
    .addColumn('at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('audit_logs_at').on('audit_logs').column('at').execute();
  await db.schema.createIndex('audit_logs_user_at').on('audit_logs').columns(['user_id', 'at']).execute();
  await db.schema.createIndex('audit_logs_action_at').on('audit_logs').columns(['action', 'at']).execute();
}
