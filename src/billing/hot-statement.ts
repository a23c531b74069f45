import type { Db } from '../db/database.js';
import type { SqliteGroupCommit } from './sqlite-group-commit.js';

/** A statement's SQL, given the dialect's placeholder for its nth value (1-based). */
export type HotSql = (p: (n: number) => string) => string;

export interface HotResult<R> {
  /** The rows of a statement that returns some (RETURNING), else none. */
  rows: R[];
  /** Rows changed (of a statement with RETURNING: the rows returned). */
  changes: number;
}

/**
 * A statement of the request path beside the hold and the settle, prepared once on either database
 * (a statement of Kysely's is built and compiled on every call, and on SQLite first commits the group
 * commit's open transaction, then runs in one of its own).
 * - SQLite: run in the billing group commit (sqlite-group-commit.ts): answered as soon as it ran, as a
 *   hold is, or only after its COMMIT when `durable` (as a settle is); never a transaction of its own.
 * - PostgreSQL: a named prepared statement, parsed once per pooled connection.
 * Values are given in the placeholders' numbering, whatever order they appear in the SQL.
 */
export function hotStatement<R = unknown>(
  db: Db,
  commits: SqliteGroupCommit | null,
  name: string,
  sql: HotSql,
  durable: boolean,
): (...values: unknown[]) => Promise<HotResult<R>> {
  if (db.sqlite && commits) {
    // SQLite's `?` binds in the order of appearance: note which value each one takes.
    const order: number[] = [];
    const stmt = db.sqlite.prepare(
      sql((n) => {
        order.push(n - 1);
        return '?';
      }),
    );
    return (...values) =>
      commits.run(() => {
        const args = order.map((i) => values[i]);
        if (!stmt.reader) return { rows: [], changes: stmt.run(...args).changes };
        const rows = stmt.all(...args) as R[];
        return { rows, changes: rows.length };
      }, durable);
  }
  const pool = db.pgPool;
  if (!pool) throw new Error(`${name}: neither a SQLite group commit nor a PostgreSQL pool`);
  const text = sql((n) => `$${n}`);
  return async (...values) => {
    const r = await pool.query({ name, text, values });
    return { rows: r.rows as R[], changes: r.rowCount ?? 0 };
  };
}
