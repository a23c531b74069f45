import type pg from 'pg';
import type { UsageRecord } from './store.js';

/**
 * The hold and the settle on PostgreSQL, each as ONE statement (data-modifying CTEs, atomic in
 * autocommit): one round trip instead of a transaction of five or seven, so a user's row is locked
 * only while the statement runs, not across round trips. Same effects as BillingStore's
 * step-by-step version: trial credits are spent first, each bucket touched gets its own ledger
 * row, the hold is released and the usage record written, all or nothing.
 *
 * Both are named prepared statements on the pool's connections: PostgreSQL parses each once per
 * connection and, after a few runs, keeps its plan, instead of parsing and planning a long CTE on
 * every request (that was most of the server's time per statement).
 */
export class PostgresBillingFastPath {
  constructor(private readonly pool: pg.Pool) {}

  async hold(
    id: string,
    userId: string,
    keyId: string | null,
    amount: number,
    requestId: string,
    now: number,
    ttlMs: number,
  ): Promise<boolean> {
    const r = await this.pool.query({
      name: 'gwz_hold_v1',
      text: HOLD,
      values: [id, userId, keyId, amount, requestId, now, now + ttlMs],
    });
    return r.rows.length === 1;
  }

  async settle(
    holdId: string | null,
    cost: number,
    usage: UsageRecord,
    keyId: string | null,
  ): Promise<number | null> {
    const what = `${usage.endpoint} ${usage.model} via ${usage.provider}`;
    const r = await this.pool.query<{ balance_micros: number }>({
      name: 'gwz_settle_v1',
      text: SETTLE,
      values: [
        usage.user_id,
        cost,
        holdId,
        usage.created_at,
        usage.request_id,
        `${what} (trial credits)`,
        what,
        keyId,
        usage.key_id,
        usage.endpoint,
        usage.model,
        usage.provider,
        usage.prompt_tokens,
        usage.completion_tokens,
        usage.cached_tokens,
        usage.reasoning_tokens,
        usage.cost_micros,
        usage.latency_ms,
        usage.status,
        usage.stream,
        usage.app,
      ],
    });
    return r.rows[0]?.balance_micros ?? null;
  }
}

// $1 id, $2 user, $3 key, $4 amount, $5 request id, $6 now, $7 expires at
const HOLD = `
WITH u AS (
  UPDATE users SET held_micros = held_micros + $4::bigint
  WHERE id = $2::text AND balance_micros + trial_balance_micros - held_micros >= $4::bigint
  RETURNING id
)
INSERT INTO holds (id, user_id, key_id, amount_micros, request_id, created_at, expires_at)
SELECT $1::text, u.id, $3::text, $4::bigint, $5::text, $6::bigint, $7::bigint FROM u
RETURNING id`;

// $1 user, $2 cost, $3 hold id, $4 at, $5 request id, $6 trial description, $7 paid description,
// $8 key to add the spend to, $9..$21 the usage record's columns
const SETTLE = `
WITH cur AS (
  SELECT trial_balance_micros AS t FROM users WHERE id = $1::text FOR UPDATE
),
f AS (
  SELECT CASE WHEN $2::bigint > 0 THEN LEAST($2::bigint, GREATEST(0, t)) ELSE 0 END AS from_trial FROM cur
),
h AS (
  DELETE FROM holds WHERE id = $3::text RETURNING amount_micros
),
u AS (
  UPDATE users SET
    trial_balance_micros = trial_balance_micros - (SELECT from_trial FROM f),
    balance_micros = balance_micros - ($2::bigint - (SELECT from_trial FROM f)),
    held_micros = held_micros - COALESCE((SELECT amount_micros FROM h), 0),
    updated_at = $4::bigint
  WHERE id = $1::text
  RETURNING balance_micros, trial_balance_micros, (SELECT from_trial FROM f) AS from_trial
),
ledger_rows AS (
  -- trial bucket first, then paid, as the step-by-step version writes them
  INSERT INTO ledger (user_id, kind, bucket, amount_micros, balance_after, reference, idempotency_key, description, created_at)
  SELECT $1::text, 'usage', x.bucket, x.amount, x.balance_after, $5::text, NULL, x.description, $4::bigint
  FROM (
    SELECT 1 AS ord, 'trial' AS bucket, -from_trial AS amount, trial_balance_micros AS balance_after,
           $6::text AS description
    FROM u WHERE from_trial <> 0
    UNION ALL
    SELECT 2, 'paid', -($2::bigint - from_trial), balance_micros, $7::text FROM u WHERE $2::bigint - from_trial <> 0
  ) x
  ORDER BY x.ord
),
key_spend AS (
  UPDATE api_keys SET spent_micros = spent_micros + $2::bigint WHERE id = $8::text AND $2::bigint <> 0
),
rec AS (
  INSERT INTO usage_records (request_id, user_id, key_id, endpoint, model, provider, prompt_tokens,
    completion_tokens, cached_tokens, reasoning_tokens, cost_micros, latency_ms, status, stream, app, created_at)
  VALUES ($5::text, $1::text, $9::text, $10::text, $11::text, $12::text, $13::bigint, $14::bigint, $15::bigint,
    $16::bigint, $17::bigint, $18::bigint, $19::text, $20::integer, $21::text, $4::bigint)
)
SELECT balance_micros FROM u`;
