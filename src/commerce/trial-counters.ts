import { hotStatement } from '../billing/hot-statement.js';
import type { SqliteGroupCommit } from '../billing/sqlite-group-commit.js';
import type { Db } from '../db/database.js';

/** A trial's counters and caps after a request's tokens were added. */
export interface TrialUse {
  tokens_used: number;
  tokens_limit: number;
  requests_used: number;
  requests_limit: number;
  status: string;
}

/**
 * The two statements a trial user's request runs (one when it is admitted, one when it ends), prepared
 * once (billing/hot-statement.ts): on SQLite they run in the billing group commit beside the request's
 * hold, answered once run (a count is lost only with a process that dies before that COMMIT, like the
 * hold itself); Kysely's UPDATEs each cost a COMMIT of their own (measured: +50–65 % CPU per request
 * against a paid user).
 */
export interface TrialCounters {
  /** Counts one request against the user's trial; false when it is not active, past its time or at a cap. */
  countRequest(userId: string, now: number): Promise<boolean>;
  /** Adds a request's tokens; the trial's row after it (undefined: the user has no trial). */
  addTokens(userId: string, tokens: number): Promise<TrialUse | undefined>;
}

export function trialCounters(db: Db, commits: SqliteGroupCommit | null): TrialCounters {
  const count = hotStatement(
    db,
    commits,
    'gwz_trial_count',
    (p) => `UPDATE trials SET requests_used = requests_used + 1
      WHERE user_id = ${p(1)} AND status = 'active' AND ends_at > ${p(2)}
        AND requests_used < requests_limit AND tokens_used < tokens_limit`,
    false,
  );
  const add = hotStatement<TrialUse>(
    db,
    commits,
    'gwz_trial_tokens',
    (p) => `UPDATE trials SET tokens_used = tokens_used + ${p(2)} WHERE user_id = ${p(1)}
      RETURNING tokens_used, tokens_limit, requests_used, requests_limit, status`,
    false,
  );
  return {
    countRequest: (userId, now) => count(userId, now).then((r) => r.changes === 1),
    addTokens: (userId, tokens) => add(userId, tokens).then((r) => r.rows[0]),
  };
}
