import type SQLite from 'better-sqlite3';
import type { Db } from '../db/database.js';
import type { HoldArgs } from './hold-leases.js';
import { SqliteGroupCommit } from './sqlite-group-commit.js';
import type { UsageRecord } from './store.js';

/** SQLite's hold and settle path: prepared statements, group-committed; null on PostgreSQL. */
export function sqliteFastPath(db: Db): { path: SqliteBillingFastPath; commits: SqliteGroupCommit } | null {
  if (!db.sqlite) return null;
  const commits = new SqliteGroupCommit(db.sqlite, db.db);
  db.beforeStatement?.(() => commits.beforeForeign());
  commits.setAfterCommit(db.betweenTransactions);
  return { path: new SqliteBillingFastPath(db.sqlite), commits };
}

/**
 * The hold and the settle on SQLite as prepared statements: the same SQL as BillingStore's Kysely
 * version, without building and preparing the queries on every request (they were half of the
 * gateway's CPU). Each runs inside a transaction of its own or as one savepoint of a group commit
 * (sqlite-group-commit.ts); never on its own.
 */
export class SqliteBillingFastPath {
  readonly hold: (...a: HoldArgs) => boolean;
  readonly settle: (
    holdId: string | null,
    cost: number,
    usage: UsageRecord,
    keyId: string | null,
  ) => number | null;
  /** A hold's release (a lease given back, a request that ends unsettled); nothing when it is gone. */
  readonly release: (holdId: string) => void;
  /** What the user can still hold: balance + trial − held; null for an unknown user. */
  readonly available: (userId: string) => number | null;
  /** What the user has: balance + trial (holds not subtracted); null for an unknown user. */
  readonly funds: (userId: string) => number | null;

  constructor(sqlite: SQLite.Database) {
    const takeHold = sqlite.prepare(
      'UPDATE users SET held_micros = held_micros + ? WHERE id = ? AND balance_micros + trial_balance_micros - held_micros >= ?',
    );
    const insertHold = sqlite.prepare(
      'INSERT INTO holds (id, user_id, key_id, amount_micros, request_id, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)',
    );
    const deleteHold = sqlite.prepare('DELETE FROM holds WHERE id = ? RETURNING amount_micros, user_id');
    const chargePaidOnly = sqlite.prepare(
      'UPDATE users SET balance_micros = balance_micros - ?, held_micros = held_micros - ?, updated_at = ? WHERE id = ? AND trial_balance_micros <= 0 RETURNING balance_micros',
    );
    const chargeAny = sqlite.prepare(
      'UPDATE users SET balance_micros = balance_micros - ?, held_micros = held_micros - ?, updated_at = ? WHERE id = ? RETURNING balance_micros',
    );
    const trialOf = sqlite.prepare('SELECT trial_balance_micros FROM users WHERE id = ?');
    const chargeSplit = sqlite.prepare(
      'UPDATE users SET balance_micros = balance_micros - ?, trial_balance_micros = trial_balance_micros - ?, held_micros = held_micros - ?, updated_at = ? WHERE id = ? RETURNING balance_micros, trial_balance_micros',
    );
    const insertLedger = sqlite.prepare(
      'INSERT INTO ledger (user_id, kind, bucket, amount_micros, balance_after, reference, idempotency_key, description, created_at) VALUES (?, ?, ?, ?, ?, ?, NULL, ?, ?)',
    );
    const addKeySpend = sqlite.prepare('UPDATE api_keys SET spent_micros = spent_micros + ? WHERE id = ?');
    const insertUsage = sqlite.prepare(
      `INSERT INTO usage_records (request_id, user_id, key_id, endpoint, model, provider, prompt_tokens, completion_tokens,
        cached_tokens, reasoning_tokens, cost_micros, latency_ms, status, stream, app, created_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );

    const unhold = sqlite.prepare('UPDATE users SET held_micros = held_micros - ? WHERE id = ?');
    const availableOf = sqlite
      .prepare(
        'SELECT balance_micros + COALESCE(trial_balance_micros, 0) - held_micros FROM users WHERE id = ?',
      )
      .pluck();

    this.release = (holdId) => {
      const h = deleteHold.get(holdId) as { amount_micros: number; user_id: string } | undefined;
      if (h) unhold.run(h.amount_micros, h.user_id);
    };

    const fundsOf = sqlite
      .prepare('SELECT balance_micros + COALESCE(trial_balance_micros, 0) FROM users WHERE id = ?')
      .pluck();

    this.available = (userId) => (availableOf.get(userId) as number | undefined) ?? null;
    this.funds = (userId) => (fundsOf.get(userId) as number | undefined) ?? null;

    this.hold = (id, userId, keyId, amount, requestId, now, ttlMs) => {
      if (takeHold.run(amount, userId, amount).changes !== 1) return false;
      insertHold.run(id, userId, keyId, amount, requestId, now, now + ttlMs);
      return true;
    };

    this.settle = (holdId, cost, usage, keyId) => {
      const held = holdId
        ? ((deleteHold.get(holdId) as { amount_micros: number } | undefined)?.amount_micros ?? 0)
        : 0;
      let balanceAfter: number | null = null;
      let fromTrial = 0;
      let trialAfter = 0;
      const at = usage.created_at;
      if (cost !== 0 || held !== 0) {
        // Common case, one statement: no trial credit, so everything comes from the paid balance.
        const plain = (cost > 0 ? chargePaidOnly : chargeAny).get(cost, held, at, usage.user_id) as
          | { balance_micros: number }
          | undefined;
        if (plain) balanceAfter = plain.balance_micros;
        else {
          // Trial credit left (spent first); SQLite transactions are serial, so the split is exact.
          const t = trialOf.get(usage.user_id) as { trial_balance_micros: number } | undefined;
          fromTrial = Math.min(cost, Math.max(0, t?.trial_balance_micros ?? 0));
          const u = chargeSplit.get(cost - fromTrial, fromTrial, held, at, usage.user_id) as {
            balance_micros: number;
            trial_balance_micros: number;
          };
          balanceAfter = u.balance_micros;
          trialAfter = u.trial_balance_micros ?? 0;
        }
      }
      const what = `${usage.endpoint} ${usage.model} via ${usage.provider}`;
      if (fromTrial !== 0) {
        insertLedger.run(
          usage.user_id,
          'usage',
          'trial',
          -fromTrial,
          trialAfter,
          usage.request_id,
          `${what} (trial credits)`,
          at,
        );
      }
      const fromPaid = cost - fromTrial;
      if (fromPaid !== 0 && balanceAfter !== null) {
        insertLedger.run(usage.user_id, 'usage', 'paid', -fromPaid, balanceAfter, usage.request_id, what, at);
      }
      if (cost !== 0 && balanceAfter !== null && keyId) addKeySpend.run(cost, keyId);
      // Positional: binding sixteen named parameters from an object costs twice as much.
      insertUsage.run(
        usage.request_id,
        usage.user_id,
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
        usage.created_at,
      );
      return balanceAfter;
    };
  }
}
