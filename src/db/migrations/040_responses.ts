import type { Kysely } from 'kysely';
import type { Dialect } from '../database.js';

/** Stored Responses API responses (`store`, `previous_response_id`, `GET /v1/responses/{id}`). */
export async function up(db: Kysely<any>, _dialect: Dialect): Promise<void> {
  await db.schema
    .createTable('stored_responses')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('user_id', 'text', (c) => c.notNull().references('users.id'))
    .addColumn('model', 'text', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull())
    // The whole conversation up to this response's input (previous chain expanded), JSON.
    .addColumn('input_items', 'text', (c) => c.notNull())
    // The response object as the client received it, JSON.
    .addColumn('response', 'text', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema
    .createIndex('stored_responses_user')
    .on('stored_responses')
    .columns(['user_id', 'created_at'])
    .execute();
}
