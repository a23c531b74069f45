import type { Kysely } from 'kysely';
import type { Dialect } from '../database.js';

/** Rankings aggregate usage_records by time window; apps need their own (app, time) index. */
export async function up(db: Kysely<any>, _dialect: Dialect): Promise<void> {
  await db.schema.createIndex('usage_app_time').on('usage_records').columns(['app', 'created_at']).execute();
}
