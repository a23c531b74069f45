import type { Kysely } from 'kysely';
import type { Dialect } from '../database.js';

/** Admin-set rate limits per user or per key; a null column falls back to the plan's value. */
export async function up(db: Kysely<any>, _dialect: Dialect): Promise<void> {
  await db.schema
    .createTable('rate_limit_overrides')
    .addColumn('subject_type', 'text', (c) => c.notNull())
    .addColumn('subject_id', 'text', (c) => c.notNull())
    .addColumn('user_id', 'text', (c) => c.notNull())
    .addColumn('requests_per_minute', 'bigint')
    .addColumn('requests_per_hour', 'bigint')
    .addColumn('requests_per_day', 'bigint')
    .addColumn('tokens_per_minute', 'bigint')
    .addColumn('tokens_per_hour', 'bigint')
    .addColumn('tokens_per_day', 'bigint')
    .addColumn('requests_per_month', 'bigint')
    .addColumn('tokens_per_month', 'bigint')
    .addColumn('concurrency', 'bigint')
    .addColumn('reason', 'text')
    .addColumn('updated_by', 'text', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('rate_limit_overrides_pk', ['subject_type', 'subject_id'])
    .execute();
  await db.schema
    .createIndex('rate_limit_overrides_user')
    .on('rate_limit_overrides')
    .column('user_id')
    .execute();
}
