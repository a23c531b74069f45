import { type Kysely, sql } from 'kysely';
import type { Dialect } from '../database.js';

/**
 * Holds live for one request: every request inserts one and deletes it again. Two B-trees fewer per
 * write: no `expires_at` index (the expiry sweep scans the table, which holds only what is in
 * flight), and on SQLite the table is keyed by its id directly (WITHOUT ROWID), not by a rowid plus
 * an index of ids.
 */
export async function up(db: Kysely<any>, dialect: Dialect): Promise<void> {
  if (dialect === 'postgres') {
    await db.schema.dropIndex('holds_expires').ifExists().execute();
    return;
  }
  await sql`CREATE TABLE holds_lean (
    id text PRIMARY KEY NOT NULL,
    user_id text NOT NULL,
    key_id text,
    amount_micros bigint NOT NULL,
    request_id text NOT NULL,
    created_at bigint NOT NULL,
    expires_at bigint NOT NULL
  ) WITHOUT ROWID`.execute(db);
  await sql`INSERT INTO holds_lean (id, user_id, key_id, amount_micros, request_id, created_at, expires_at)
    SELECT id, user_id, key_id, amount_micros, request_id, created_at, expires_at FROM holds`.execute(db);
  await sql`DROP TABLE holds`.execute(db);
  await sql`ALTER TABLE holds_lean RENAME TO holds`.execute(db);
}
