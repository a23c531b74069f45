import { type Kysely, sql } from 'kysely';
import type { Dialect } from '../database.js';

/**
 * PostgreSQL: holds and settles of many requests in one statement (src/billing/postgres-fast.ts).
 * `gwz_billing_batch(ops)` runs each operation in order, each in a block of its own (a failing one
 * is undone alone and reported with its SQLSTATE), all in the statement's one transaction: one round
 * trip, one lock of a user's row and one commit (one WAL flush) for every operation of the batch.
 * A batch of holds only commits without waiting for the WAL flush: a hold lost with a crash of the
 * database loses nothing that was charged. The effects of each operation are those of the
 * step-by-step version in BillingStore.
 *
 * ops: [{"k":"h","id","user","key","amount","req","at","exp"} | {"k":"s","user","cost","hold","at",
 * "req","trial_what","what","spend_key","key","endpoint","model","provider","pt","ct","cached",
 * "reasoning","cost_rec","latency","status","stream","app"}]
 * returns [{"ok": true|false|balance|null} | {"err": message, "code": SQLSTATE}] in the same order.
 */
export async function up(db: Kysely<any>, dialect: Dialect): Promise<void> {
  if (dialect !== 'postgres') return;
  await sql`
CREATE OR REPLACE FUNCTION gwz_billing_batch(ops jsonb) RETURNS jsonb LANGUAGE plpgsql AS $fn$
DECLARE
  op jsonb;
  res jsonb := '[]'::jsonb;
  v_user text;
  v_amount bigint;
  v_cost bigint;
  v_trial bigint;
  v_from_trial bigint;
  v_held bigint;
  v_bal bigint;
  v_tbal bigint;
  v_at bigint;
  n integer;
BEGIN
  IF NOT EXISTS (SELECT 1 FROM jsonb_array_elements(ops) e WHERE e->>'k' = 's') THEN
    PERFORM set_config('synchronous_commit', 'off', true);
  END IF;
  FOR op IN SELECT value FROM jsonb_array_elements(ops) LOOP
    BEGIN
      v_user := op->>'user';
      v_at := (op->>'at')::bigint;
      IF op->>'k' = 'h' THEN
        v_amount := (op->>'amount')::bigint;
        UPDATE users SET held_micros = held_micros + v_amount
        WHERE id = v_user AND balance_micros + trial_balance_micros - held_micros >= v_amount;
        GET DIAGNOSTICS n = ROW_COUNT;
        IF n = 1 THEN
          INSERT INTO holds (id, user_id, key_id, amount_micros, request_id, created_at, expires_at)
          VALUES (op->>'id', v_user, op->>'key', v_amount, op->>'req', v_at, (op->>'exp')::bigint);
        END IF;
        res := res || jsonb_build_array(jsonb_build_object('ok', n = 1));
      ELSE
        v_cost := (op->>'cost')::bigint;
        SELECT trial_balance_micros INTO v_trial FROM users WHERE id = v_user FOR UPDATE;
        v_from_trial := CASE WHEN v_cost > 0 THEN LEAST(v_cost, GREATEST(0, COALESCE(v_trial, 0))) ELSE 0 END;
        v_held := NULL;
        IF op->>'hold' IS NOT NULL THEN
          DELETE FROM holds WHERE id = op->>'hold' RETURNING amount_micros INTO v_held;
        END IF;
        v_bal := NULL;
        UPDATE users SET
          trial_balance_micros = trial_balance_micros - v_from_trial,
          balance_micros = balance_micros - (v_cost - v_from_trial),
          held_micros = held_micros - COALESCE(v_held, 0),
          updated_at = v_at
        WHERE id = v_user
        RETURNING balance_micros, trial_balance_micros INTO v_bal, v_tbal;
        IF FOUND THEN
          IF v_from_trial <> 0 THEN
            INSERT INTO ledger (user_id, kind, bucket, amount_micros, balance_after, reference, idempotency_key, description, created_at)
            VALUES (v_user, 'usage', 'trial', -v_from_trial, v_tbal, op->>'req', NULL, op->>'trial_what', v_at);
          END IF;
          IF v_cost - v_from_trial <> 0 THEN
            INSERT INTO ledger (user_id, kind, bucket, amount_micros, balance_after, reference, idempotency_key, description, created_at)
            VALUES (v_user, 'usage', 'paid', -(v_cost - v_from_trial), v_bal, op->>'req', NULL, op->>'what', v_at);
          END IF;
        END IF;
        IF v_cost <> 0 AND op->>'spend_key' IS NOT NULL THEN
          UPDATE api_keys SET spent_micros = spent_micros + v_cost WHERE id = op->>'spend_key';
        END IF;
        INSERT INTO usage_records (request_id, user_id, key_id, endpoint, model, provider, prompt_tokens,
          completion_tokens, cached_tokens, reasoning_tokens, cost_micros, latency_ms, status, stream, app, created_at)
        VALUES (op->>'req', v_user, op->>'key', op->>'endpoint', op->>'model', op->>'provider', (op->>'pt')::bigint,
          (op->>'ct')::bigint, (op->>'cached')::bigint, (op->>'reasoning')::bigint, (op->>'cost_rec')::bigint,
          (op->>'latency')::bigint, op->>'status', (op->>'stream')::integer, op->>'app', v_at);
        res := res || jsonb_build_array(jsonb_build_object('ok', v_bal));
      END IF;
    EXCEPTION WHEN OTHERS THEN
      res := res || jsonb_build_array(jsonb_build_object('err', SQLERRM, 'code', SQLSTATE));
    END;
  END LOOP;
  RETURN res;
END
$fn$`.execute(db);
}
