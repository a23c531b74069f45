import { type Kysely, sql } from 'kysely';
import type { Database } from '../db/schema.js';
import type { UsageRecord } from './store.js';

/**
 * The hold and the settle on PostgreSQL, each as ONE statement (data-modifying CTEs, atomic in
 * autocommit): one round trip instead of a transaction of five or seven, so a user's row is locked
 * only while the statement runs, not across round trips. Same effects as BillingStore's
 * step-by-step version: trial credits are spent first, each bucket touched gets its own ledger
 * row, the hold is released and the usage record written, all or nothing.
 */
export class PostgresBillingFastPath {
  constructor(private readonly db: Kysely<Database>) {}

  async hold(
    id: string,
    userId: string,
    keyId: string | null,
    amount: number,
    requestId: string,
    now: number,
    ttlMs: number,
  ): Promise<boolean> {
    const r = await sql<{ id: string }>`
      WITH u AS (
        UPDATE users SET held_micros = held_micros + ${amount}::bigint
        WHERE id = ${userId} AND balance_micros + trial_balance_micros - held_micros >= ${amount}::bigint
        RETURNING id
      )
      INSERT INTO holds (id, user_id, key_id, amount_micros, request_id, created_at, expires_at)
      SELECT ${id}, u.id, ${keyId}, ${amount}::bigint, ${requestId}, ${now}::bigint, ${now + ttlMs}::bigint FROM u
      RETURNING id`.execute(this.db);
    return r.rows.length === 1;
  }

  async settle(
    holdId: string | null,
    cost: number,
    usage: UsageRecord,
    keyId: string | null,
  ): Promise<number | null> {
    const what = `${usage.endpoint} ${usage.model} via ${usage.provider}`;
    const c = sql`${cost}::bigint`;
    const r = await sql<{ balance_micros: number }>`
      WITH cur AS (
        SELECT trial_balance_micros AS t FROM users WHERE id = ${usage.user_id} FOR UPDATE
      ),
      f AS (
        SELECT CASE WHEN ${c} > 0 THEN LEAST(${c}, GREATEST(0, t)) ELSE 0 END AS from_trial FROM cur
      ),
      h AS (
        DELETE FROM holds WHERE id = ${holdId} RETURNING amount_micros
      ),
      u AS (
        UPDATE users SET
          trial_balance_micros = trial_balance_micros - (SELECT from_trial FROM f),
          balance_micros = balance_micros - (${c} - (SELECT from_trial FROM f)),
          held_micros = held_micros - COALESCE((SELECT amount_micros FROM h), 0),
          updated_at = ${usage.created_at}::bigint
        WHERE id = ${usage.user_id}
        RETURNING balance_micros, trial_balance_micros, (SELECT from_trial FROM f) AS from_trial
      ),
      ledger_rows AS (
        -- trial bucket first, then paid, as the step-by-step version writes them
        INSERT INTO ledger (user_id, kind, bucket, amount_micros, balance_after, reference, idempotency_key, description, created_at)
        SELECT ${usage.user_id}, 'usage', x.bucket, x.amount, x.balance_after, ${usage.request_id}, NULL, x.description,
               ${usage.created_at}::bigint
        FROM (
          SELECT 1 AS ord, 'trial' AS bucket, -from_trial AS amount, trial_balance_micros AS balance_after,
                 ${`${what} (trial credits)`}::text AS description
          FROM u WHERE from_trial <> 0
          UNION ALL
          SELECT 2, 'paid', -(${c} - from_trial), balance_micros, ${what}::text FROM u WHERE ${c} - from_trial <> 0
        ) x
        ORDER BY x.ord
      ),
      key_spend AS (
        UPDATE api_keys SET spent_micros = spent_micros + ${c} WHERE id = ${keyId} AND ${c} <> 0
      ),
      rec AS (
        INSERT INTO usage_records (request_id, user_id, key_id, endpoint, model, provider, prompt_tokens,
          completion_tokens, cached_tokens, reasoning_tokens, cost_micros, latency_ms, status, stream, app, created_at)
        VALUES (${usage.request_id}, ${usage.user_id}, ${usage.key_id}, ${usage.endpoint}, ${usage.model},
          ${usage.provider}, ${usage.prompt_tokens}, ${usage.completion_tokens}, ${usage.cached_tokens},
          ${usage.reasoning_tokens}, ${usage.cost_micros}, ${usage.latency_ms}, ${usage.status}, ${usage.stream},
          ${usage.app}, ${usage.created_at})
      )
      SELECT balance_micros FROM u`.execute(this.db);
    return r.rows[0]?.balance_micros ?? null;
  }
}
