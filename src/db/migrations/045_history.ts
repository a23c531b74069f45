import type { Kysely } from 'kysely';
import type { Dialect } from '../database.js';
import { serialId, serialType } from './types.js';

/** Chat history: sessions owned by one user, and their messages in order. */
export async function up(db: Kysely<any>, dialect: Dialect): Promise<void> {
  await db.schema
    .createTable('chat_sessions')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('user_id', 'text', (c) => c.notNull())
    .addColumn('title', 'text', (c) => c.notNull())
    .addColumn('model', 'text')
    .addColumn('message_count', 'bigint', (c) => c.notNull().defaultTo(0))
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema
    .createIndex('chat_sessions_user_activity')
    .on('chat_sessions')
    .columns(['user_id', 'updated_at'])
    .execute();

  await db.schema
    .createTable('chat_messages')
    .addColumn('id', serialType(dialect), serialId(dialect))
    .addColumn('session_id', 'text', (c) => c.notNull())
    .addColumn('user_id', 'text', (c) => c.notNull())
    .addColumn('role', 'text', (c) => c.notNull())
    .addColumn('content', 'text', (c) => c.notNull())
    .addColumn('parts', 'text')
    .addColumn('model', 'text')
    .addColumn('tokens', 'bigint', (c) => c.notNull().defaultTo(0))
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema
    .createIndex('chat_messages_session')
    .on('chat_messages')
    .columns(['session_id', 'id'])
    .execute();
  await db.schema.createIndex('chat_messages_user').on('chat_messages').column('user_id').execute();
}
