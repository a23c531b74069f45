import type { Kysely } from 'kysely';
import type { Dialect } from '../database.js';
import { serialId, serialType } from './types.js';

export async function up(db: Kysely<any>, dialect: Dialect): Promise<void> {
  await db.schema
    .createTable('users')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('email', 'text')
    .addColumn('username', 'text')
    .addColumn('privy_id', 'text')
    .addColumn('role', 'text', (c) => c.notNull().defaultTo('user'))
    .addColumn('status', 'text', (c) => c.notNull().defaultTo('active'))
    .addColumn('balance_micros', 'bigint', (c) => c.notNull().defaultTo(0))
    .addColumn('held_micros', 'bigint', (c) => c.notNull().defaultTo(0))
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('users_email').unique().on('users').column('email').execute();
  await db.schema.createIndex('users_username').unique().on('users').column('username').execute();
  await db.schema.createIndex('users_privy').unique().on('users').column('privy_id').execute();

  await db.schema
    .createTable('api_keys')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('user_id', 'text', (c) => c.notNull().references('users.id'))
    .addColumn('key_hash', 'text', (c) => c.notNull().unique())
    .addColumn('prefix', 'text', (c) => c.notNull())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('environment', 'text', (c) => c.notNull())
    .addColumn('is_primary', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('is_active', 'integer', (c) => c.notNull().defaultTo(1))
    .addColumn('scopes', 'text')
    .addColumn('expires_at', 'bigint')
    .addColumn('max_requests', 'bigint')
    .addColumn('request_count', 'bigint', (c) => c.notNull().defaultTo(0))
    .addColumn('ip_allowlist', 'text')
    .addColumn('domain_referrers', 'text')
    .addColumn('allowed_models', 'text')
    .addColumn('max_spend_micros', 'bigint')
    .addColumn('spent_micros', 'bigint', (c) => c.notNull().defaultTo(0))
    .addColumn('last_used_at', 'bigint')
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('api_keys_user').on('api_keys').column('user_id').execute();
  await db.schema
    .createIndex('api_keys_user_name')
    .unique()
    .on('api_keys')
    .columns(['user_id', 'name'])
    .execute();

  await db.schema
    .createTable('ledger')
    .addColumn('id', serialType(dialect), serialId(dialect))
    .addColumn('user_id', 'text', (c) => c.notNull().references('users.id'))
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('amount_micros', 'bigint', (c) => c.notNull())
    .addColumn('balance_after', 'bigint', (c) => c.notNull())
    .addColumn('reference', 'text')
    .addColumn('idempotency_key', 'text', (c) => c.unique())
    .addColumn('description', 'text')
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('ledger_user').on('ledger').columns(['user_id', 'id']).execute();

  await db.schema
    .createTable('holds')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('user_id', 'text', (c) => c.notNull())
    .addColumn('key_id', 'text')
    .addColumn('amount_micros', 'bigint', (c) => c.notNull())
    .addColumn('request_id', 'text', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('expires_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('holds_expires').on('holds').column('expires_at').execute();

  await db.schema
    .createTable('usage_records')
    .addColumn('id', serialType(dialect), serialId(dialect))
    .addColumn('request_id', 'text', (c) => c.notNull().unique())
    .addColumn('user_id', 'text', (c) => c.notNull())
    .addColumn('key_id', 'text')
    .addColumn('endpoint', 'text', (c) => c.notNull())
    .addColumn('model', 'text', (c) => c.notNull())
    .addColumn('provider', 'text', (c) => c.notNull())
    .addColumn('prompt_tokens', 'bigint', (c) => c.notNull().defaultTo(0))
    .addColumn('completion_tokens', 'bigint', (c) => c.notNull().defaultTo(0))
    .addColumn('cached_tokens', 'bigint', (c) => c.notNull().defaultTo(0))
    .addColumn('reasoning_tokens', 'bigint', (c) => c.notNull().defaultTo(0))
    .addColumn('cost_micros', 'bigint', (c) => c.notNull().defaultTo(0))
    .addColumn('latency_ms', 'bigint', (c) => c.notNull().defaultTo(0))
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('stream', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('app', 'text')
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema
    .createIndex('usage_user_time')
    .on('usage_records')
    .columns(['user_id', 'created_at'])
    .execute();
  await db.schema.createIndex('usage_time').on('usage_records').column('created_at').execute();
  await db.schema
    .createIndex('usage_model_time')
    .on('usage_records')
    .columns(['model', 'created_at'])
    .execute();

  await db.schema
    .createTable('models')
    .addColumn('provider', 'text', (c) => c.notNull())
    .addColumn('model_id', 'text', (c) => c.notNull())
    .addColumn('upstream_id', 'text', (c) => c.notNull())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('description', 'text')
    .addColumn('context_length', 'bigint')
    .addColumn('max_output_tokens', 'bigint')
    .addColumn('prompt_micros_per_m', 'bigint')
    .addColumn('completion_micros_per_m', 'bigint')
    .addColumn('cache_read_micros_per_m', 'bigint')
    .addColumn('cache_write_micros_per_m', 'bigint')
    .addColumn('reasoning_micros_per_m', 'bigint')
    .addColumn('request_micros', 'bigint')
    .addColumn('image_micros', 'bigint')
    .addColumn('modality', 'text')
    .addColumn('raw', 'text')
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('models_pk', ['provider', 'model_id'])
    .execute();
  await db.schema.createIndex('models_model').on('models').column('model_id').execute();

  await db.schema
    .createTable('provider_sync')
    .addColumn('provider', 'text', (c) => c.primaryKey())
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('model_count', 'bigint', (c) => c.notNull().defaultTo(0))
    .addColumn('last_sync_at', 'bigint')
    .addColumn('last_error', 'text')
    .execute();
}
