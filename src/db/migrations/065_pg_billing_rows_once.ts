import { type Kysely, sql } from 'kysely';
import type { Dialect } from '../database.js';

/**
 * PostgreSQL: a batch (064) writes each user's row and each key's row once, not once per operation.
 *
 * 064 ran every operation as its own statements: a hold updated the user's row, a settle locked it,
 * updated it and updated its key's row. A batch carries one user's operations one after another
 * (the caller sorts them by user), so those were the same two rows written again and again in one
 * transaction, each write a new row version (and, once the page is full, an entry in each of the
 * table's indexes), each later read walking past the earlier versions. Now the batch reads a user's
 * row once (`FOR UPDATE`, in the same user order as before, so two batches still never deadlock),
 * runs that user's holds and settles on its balances in variables, and writes the row once; the keys'
 * spend is summed and written once per key at the end. The inserts and deletes (holds, ledger, usage
 * records) are those of 064, in the same order, with the same values: each ledger row's balance_after
 * is the running balance after its operation, each settle answers with its own balance after.
 * Measured on a batch of 6 holds and 6 settles of one user: 2.18–2.71 → 1.75–1.99 ms of server time
 * (about a quarter less).
 *
 * `isolate` (one operation in a block of its own, reporting its SQLSTATE) runs 064's per-operation
 * body unchanged: it is the path of a lone operation after its batch was refused.
 */
export async function up(db: Kysely<any>, dialect: Dialect): Promise<void> {
  if (dialect !== 'postgres') return;
  await sql`
CREATE OR REPLACE FUNCTION gwz_billing_run(ops jsonb, isolate boolean) RETURNS jsonb LANGUAGE plpgsql AS $fn$
DECLARE
  op jsonb;
  res jsonb[] := '{}';
  cur text := NULL;
  have_user boolean := false;
  dirty boolean := false;
  v_bal bigint;
  v_tbal bigint;
  v_held bigint;
  v_upd bigint;
  v_user text;
  v_at bigint;
  v_amount bigint;
  v_cost bigint;
  v_from_trial bigint;
  v_h bigint;
  v_key text;
  spend jsonb := '{}'::jsonb;
BEGIN
  IF NOT EXISTS (SELECT 1 FROM jsonb_array_elements(ops) e WHERE e->>'k' = 's') THEN
    PERFORM set_config('synchronous_commit', 'off', true);
  END IF;
  IF isolate THEN
    FOR op IN SELECT value FROM jsonb_array_elements(ops) LOOP
      BEGIN
        res := res || gwz_billing_op(op);
      EXCEPTION WHEN OTHERS THEN
        res := res || jsonb_build_object('err', SQLERRM, 'code', SQLSTATE);
      END;
    END LOOP;
    RETURN to_jsonb(res);
  END IF;
  FOR op IN SELECT value FROM jsonb_array_elements(ops) LOOP
    v_user := op->>'user';
    IF cur IS DISTINCT FROM v_user THEN
      IF dirty THEN
        UPDATE users SET balance_micros = v_bal, trial_balance_micros = v_tbal, held_micros = v_held,
          updated_at = v_upd WHERE id = cur;
      END IF;
      cur := v_user;
      dirty := false;
      SELECT balance_micros, trial_balance_micros, held_micros, updated_at INTO v_bal, v_tbal, v_held, v_upd
      FROM users WHERE id = v_user FOR UPDATE;
      have_user := FOUND;
    END IF;
    v_at := (op->>'at')::bigint;
    IF op->>'k' = 'h' THEN
      v_amount := (op->>'amount')::bigint;
      IF have_user AND v_bal + v_tbal - v_held >= v_amount THEN
        v_held := v_held + v_amount;
        dirty := true;
        INSERT INTO holds (id, user_id, key_id, amount_micros, request_id, created_at, expires_at)
        VALUES (op->>'id', v_user, op->>'key', v_amount, op->>'req', v_at, (op->>'exp')::bigint);
        res := res || '{"ok":true}'::jsonb;
      ELSE
        res := res || '{"ok":false}'::jsonb;
      END IF;
    ELSE
      v_cost := (op->>'cost')::bigint;
      v_h := NULL;
      IF op->>'hold' IS NOT NULL THEN
        DELETE FROM holds WHERE id = op->>'hold' RETURNING amount_micros INTO v_h;
      END IF;
      IF have_user THEN
        v_from_trial := CASE WHEN v_cost > 0 THEN LEAST(v_cost, GREATEST(0, v_tbal)) ELSE 0 END;
        v_tbal := v_tbal - v_from_trial;
        v_bal := v_bal - (v_cost - v_from_trial);
        v_held := v_held - COALESCE(v_h, 0);
        v_upd := v_at;
        dirty := true;
        IF v_from_trial <> 0 THEN
          INSERT INTO ledger (user_id, kind, bucket, amount_micros, balance_after, reference, idempotency_key, description, created_at)
          VALUES (v_user, 'usage', 'trial', -v_from_trial, v_tbal, op->>'req', NULL, op->>'trial_what', v_at);
        END IF;
        IF v_cost - v_from_trial <> 0 THEN
          INSERT INTO ledger (user_id, kind, bucket, amount_micros, balance_after, reference, idempotency_key, description, created_at)
          VALUES (v_user, 'usage', 'paid', -(v_cost - v_from_trial), v_bal, op->>'req', NULL, op->>'what', v_at);
        END IF;
      END IF;
      v_key := op->>'spend_key';
      IF v_cost <> 0 AND v_key IS NOT NULL THEN
        spend := spend || jsonb_build_object(v_key, COALESCE((spend->>v_key)::bigint, 0) + v_cost);
      END IF;
      INSERT INTO usage_records (request_id, user_id, key_id, endpoint, model, provider, prompt_tokens,
        completion_tokens, cached_tokens, reasoning_tokens, cost_micros, latency_ms, status, stream, app, created_at)
      VALUES (op->>'req', v_user, op->>'key', op->>'endpoint', op->>'model', op->>'provider', (op->>'pt')::bigint,
        (op->>'ct')::bigint, (op->>'cached')::bigint, (op->>'reasoning')::bigint, (op->>'cost_rec')::bigint,
        (op->>'latency')::bigint, op->>'status', (op->>'stream')::integer, op->>'app', v_at);
      res := res || jsonb_build_object('ok', CASE WHEN have_user THEN v_bal END);
    END IF;
  END LOOP;
  IF dirty THEN
    UPDATE users SET balance_micros = v_bal, trial_balance_micros = v_tbal, held_micros = v_held,
      updated_at = v_upd WHERE id = cur;
  END IF;
  IF spend <> '{}'::jsonb THEN
    -- a key is its user's, whose row this batch has locked: no other batch writes it meanwhile
    UPDATE api_keys a SET spent_micros = a.spent_micros + s.value::bigint
    FROM jsonb_each_text(spend) s WHERE a.id = s.key;
  END IF;
  RETURN to_jsonb(res);
END
$fn$`.execute(db);
}
