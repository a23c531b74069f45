import { type Kysely, sql } from 'kysely';
import type { Dialect } from '../database.js';

/**
 * Every settled request inserts a ledger row and a usage record, and both tables had an index whose
 * key is NULL on nearly every row: `ledger.idempotency_key` (set only by admin credits and payments)
 * and `usage_records.app` (set only when the caller names its app). A NULL key is still an index
 * entry, so each settle wrote two B-tree pages that no query ever reads for it. Both become partial
 * indexes over the rows that have the key. The lookups still use them: `idempotency_key = ?` and the
 * rankings' `app IS NOT NULL` both imply the index's condition, and the unique one still refuses a
 * second ledger row with the same key.
 *
 * On SQLite the UNIQUE was declared inline, which only a table rebuild removes (in one transaction;
 * ids, and with them the AUTOINCREMENT sequence, are kept).
 */
export async function up(db: Kysely<any>, dialect: Dialect): Promise<void> {
  await db.schema.dropIndex('usage_app_time').ifExists().execute();
  await sql`CREATE INDEX usage_app_time ON usage_records (app, created_at) WHERE app IS NOT NULL`.execute(db);
  if (dialect === 'postgres') {
    await sql`ALTER TABLE ledger DROP CONSTRAINT IF EXISTS ledger_idempotency_key_key`.execute(db);
    await sql`CREATE UNIQUE INDEX IF NOT EXISTS ledger_idempotency ON ledger (idempotency_key) WHERE idempotency_key IS NOT NULL`.execute(
      db,
    );
    return;
  }
  await sql`SAVEPOINT lean_ledger`.execute(db);
  try {
    await sql`CREATE TABLE ledger_lean (
      id integer PRIMARY KEY AUTOINCREMENT,
      user_id text NOT NULL REFERENCES users (id),
      kind text NOT NULL,
      amount_micros bigint NOT NULL,
      balance_after bigint NOT NULL,
      reference text,
      idempotency_key text,
      description text,
      created_at bigint NOT NULL,
      bucket text DEFAULT 'paid' NOT NULL
    )`.execute(db);
    await sql`INSERT INTO ledger_lean (id, user_id, kind, amount_micros, balance_after, reference, idempotency_key, description, created_at, bucket)
      SELECT id, user_id, kind, amount_micros, balance_after, reference, idempotency_key, description, created_at, bucket FROM ledger`.execute(
      db,
    );
    // The sequence may run past the largest id (a row removed by hand): keep it, so no id is reused.
    const seq = await sql<{ seq: number }>`SELECT seq FROM sqlite_sequence WHERE name = 'ledger'`.execute(db);
    await sql`DROP TABLE ledger`.execute(db);
    await sql`ALTER TABLE ledger_lean RENAME TO ledger`.execute(db);
    const old = Number(seq.rows[0]?.seq ?? 0);
    await sql`DELETE FROM sqlite_sequence WHERE name = 'ledger'`.execute(db);
    await sql`INSERT INTO sqlite_sequence (name, seq) SELECT 'ledger', CAST(max(${old}, coalesce(max(id), 0)) AS INTEGER) FROM ledger`.execute(
      db,
    );
    await sql`CREATE INDEX ledger_user ON ledger (user_id, id)`.execute(db);
    await sql`CREATE UNIQUE INDEX ledger_idempotency ON ledger (idempotency_key) WHERE idempotency_key IS NOT NULL`.execute(
      db,
    );
    await sql`RELEASE lean_ledger`.execute(db);
  } catch (err) {
    // Undo the rebuild; should that fail too (the connection is gone), the rebuild's error is the one to report.
    await sql`ROLLBACK TO lean_ledger`
      .execute(db)
      .then(() => sql`RELEASE lean_ledger`.execute(db))
      .catch(() => {});
    throw err;
  }
}
