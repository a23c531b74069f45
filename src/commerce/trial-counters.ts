import type SQLite from 'better-sqlite3';
import type pg from 'pg';
import type { SqliteGroupCommit } from '../billing/sqlite-group-commit.js';

/** A trial's counters and caps after a request's tokens were added. */
export interface TrialUse {
  tokens_used: number;
  tokens_limit: number;
  requests_used: number;
  requests_limit: number;
  status: string;
}

/**
 * The two statements a trial user's request runs (one when it is admitted, one when it ends), as
 * prepared statements: Kysely built and compiled both on every request, and on SQLite each of its
 * statements first commits the billing group commit's open transaction, so a trial user's requests
 * cost that transaction's COMMIT twice each (measured: +50–65 % CPU per request against a paid user).
 */
export interface TrialCounters {
  /** Counts one request against the user's trial; false when it is not active, past its time or at a cap. */
  countRequest(userId: string, now: number): Promise<boolean>;
  /** Adds a request's tokens; the trial's row after it (undefined: the user has no trial). */
  addTokens(userId: string, tokens: number): Promise<TrialUse | undefined>;
}

/** The SQL of both, with placeholders in the dialect's own form (`?` or `$n`); the user id comes first. */
const count = (p: (n: number) => string) => `UPDATE trials SET requests_used = requests_used + 1
  WHERE user_id = ${p(1)} AND status = 'active' AND ends_at > ${p(2)}
    AND requests_used < requests_limit AND tokens_used < tokens_limit`;
const add = (p: (n: number) => string) => `UPDATE trials SET tokens_used = tokens_used + ${p(2)}
  WHERE user_id = ${p(1)} RETURNING tokens_used, tokens_limit, requests_used, requests_limit, status`;

/**
 * SQLite: both run in the group commit's transaction of the turn and are answered as soon as they ran,
 * as a hold is (sqlite-group-commit.ts): committed with that turn's settles, never on their own. Like a
 * hold's, a count is lost only with a process that dies before that COMMIT.
 */
export function sqliteTrialCounters(sqlite: SQLite.Database, commits: SqliteGroupCommit): TrialCounters {
  // `?` placeholders bind in the order they appear: the token count comes before the user id in `add`.
  const countStmt = sqlite.prepare(count(() => '?'));
  const addStmt = sqlite.prepare(add(() => '?'));
  return {
    countRequest: (userId, now) => commits.run(() => countStmt.run(userId, now).changes === 1, false),
    addTokens: (userId, tokens) =>
      commits.run(() => addStmt.get(tokens, userId) as TrialUse | undefined, false),
  };
}

const COUNT_PG = count((n) => `$${n}`);
const ADD_PG = add((n) => `$${n}`);

/** PostgreSQL: named prepared statements (parsed once per pooled connection), one round trip each. */
export function postgresTrialCounters(pool: pg.Pool): TrialCounters {
  return {
    async countRequest(userId, now) {
      const r = await pool.query({ name: 'gwz_trial_count', text: COUNT_PG, values: [userId, now] });
      return r.rowCount === 1;
    },
    async addTokens(userId, tokens) {
      const r = await pool.query<TrialUse>({
        name: 'gwz_trial_tokens',
        text: ADD_PG,
        values: [userId, tokens],
      });
      return r.rows[0];
    },
  };
}
