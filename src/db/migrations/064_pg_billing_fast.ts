import { type Kysely, sql } from 'kysely';
import type { Dialect } from '../database.js';

/**
 * PostgreSQL: the billing batch (063) without a subtransaction per operation.
 *
 * - `gwz_billing_op(op)` is one hold or settle (the body 063 ran for each operation).
 * - `gwz_billing_run(ops, isolate)` runs the operations in order in the statement's transaction.
 *   With `isolate`, each in a block of its own, a failing one undone alone and reported with its
 *   SQLSTATE (063's contract; `gwz_billing_batch(ops)` is now that). Without, one after another with
 *   no block: a subtransaction per operation cost about a quarter of the batch (and PostgreSQL
 *   caches only 64 of them per transaction); should any operation fail, the whole statement fails
 *   and nothing of it is written. The caller sends batches without and then, after such a failure,
 *   each operation alone with `isolate`, so that only the failing one fails
 *   (src/billing/postgres-fast.ts).
 */
export async function up(db: Kysely<any>, dialect: Dialect): Promise<void> {
  if (dialect !== 'postgres') return;
  await sql`
CREATE OR REPLACE FUNCTION gwz_billing_op(op jsonb) RETURNS jsonb LANGUAGE plpgsql AS $fn$
DECLARE
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
    RETURN jsonb_build_object('ok', n = 1);
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
    RETURN jsonb_build_object('ok', v_bal);
  END IF;
END
$fn$`.execute(db);
  await sql`
CREATE OR REPLACE FUNCTION gwz_billing_run(ops jsonb, isolate boolean) RETURNS jsonb LANGUAGE plpgsql AS $fn$
DECLARE
  op jsonb;
  res jsonb := '[]'::jsonb;
BEGIN
  IF NOT EXISTS (SELECT 1 FROM jsonb_array_elements(ops) e WHERE e->>'k' = 's') THEN
    PERFORM set_config('synchronous_commit', 'off', true);
  END IF;
  FOR op IN SELECT value FROM jsonb_array_elements(ops) LOOP
    IF NOT isolate THEN
      res := res || jsonb_build_array(gwz_billing_op(op));
      CONTINUE;
    END IF;
    BEGIN
      res := res || jsonb_build_array(gwz_billing_op(op));
    EXCEPTION WHEN OTHERS THEN
      res := res || jsonb_build_array(jsonb_build_object('err', SQLERRM, 'code', SQLSTATE));
    END;
  END LOOP;
  RETURN res;
END
$fn$`.execute(db);
  // 063's entry point, for a process still running the previous release during a rolling upgrade.
  await sql`
CREATE OR REPLACE FUNCTION gwz_billing_batch(ops jsonb) RETURNS jsonb LANGUAGE sql AS $fn$
  SELECT gwz_billing_run(ops, true)
$fn$`.execute(db);
}
