import { type Kysely, type Selectable, sql } from 'kysely';
import type { Dialect } from '../db/database.js';
import type { Database, UsageRecordsTable } from '../db/schema.js';
import { DEFAULT_LEASES, HoldLeases, type LeaseSettings, type TakeHold } from './hold-leases.js';
import type { PostgresBillingFastPath } from './postgres-fast.js';
import type { SqliteBillingFastPath } from './sqlite-fast.js';
import type { SqliteGroupCommit } from './sqlite-group-commit.js';

/** A usage record as the pipeline writes it (the table's row without its serial id). */
export type UsageRecord = Omit<Selectable<UsageRecordsTable>, 'id'>;

export interface LedgerEntry {
  userId: string;
  kind: string;
  amount: number;
  reference?: string | null;
  idempotencyKey?: string | null;
  description?: string | null;
  /** 'paid' (default: users.balance_micros) or 'trial' (users.trial_balance_micros, an expiring bucket). */
  bucket?: LedgerBucket;
}

export type LedgerBucket = 'paid' | 'trial';

/** Balances, holds, the ledger and usage records. Every balance change writes a ledger row in the same transaction. */
export class BillingStore {
  /** Holds of users with several requests in flight come out of one lease (hold-leases.ts); null: off. */
  readonly leases: HoldLeases | null;

  constructor(
    private readonly db: Kysely<Database>,
    readonly dialect: Dialect,
    /** SQLite: the hold and the settle as prepared statements, group-committed. */
    private readonly fast: { path: SqliteBillingFastPath; commits: SqliteGroupCommit } | null = null,
    /** PostgreSQL: the hold and the settle as one statement each. */
    private readonly pgFast: PostgresBillingFastPath | null = null,
    leases: LeaseSettings | null = DEFAULT_LEASES,
    onError?: (err: unknown) => void,
  ) {
    this.leases = leases
      ? new HoldLeases(
          {
            hold: (...a) => this.holdInStorage(...a),
            release: (id) => this.releaseInStorage(id),
            available: (userId) => this.available(userId),
          },
          leases,
          onError,
        )
      : null;
  }

  /** SQLite: the group commit the hold and the settle run in (other hot-path counters join it); null on PostgreSQL. */
  get groupCommit(): SqliteGroupCommit | null {
    return this.fast?.commits ?? null;
  }

  /**
   * Reserve `amount`: from the user's lease on this process when there is one (see hold-leases.ts),
   * else with one conditional statement; false when the available balance cannot cover it.
   */
  readonly hold: TakeHold = (id, userId, keyId, amount, requestId, now, ttlMs) =>
    this.leases
      ? this.leases.hold(id, userId, keyId, amount, requestId, now, ttlMs)
      : this.holdInStorage(id, userId, keyId, amount, requestId, now, ttlMs);

  /** A hold of its own in storage (a row of `holds`), with one conditional statement. */
  private readonly holdInStorage: TakeHold = async (id, userId, keyId, amount, requestId, now, ttlMs) => {
    const fast = this.fast;
    // Answered as soon as it ran (the write lock is held until the batch commits; see the group commit).
    if (fast)
      return fast.commits.run(() => fast.path.hold(id, userId, keyId, amount, requestId, now, ttlMs), false);
    if (this.pgFast) return this.pgFast.hold(id, userId, keyId, amount, requestId, now, ttlMs);
    return this.db.transaction().execute(async (trx) => {
      const r = await trx
        .updateTable('users')
        .set({ held_micros: sql`held_micros + ${amount}` })
        .where('id', '=', userId)
        .where(sql<boolean>`balance_micros + trial_balance_micros - held_micros >= ${amount}`)
        .executeTakeFirst();
      if (Number(r.numUpdatedRows) !== 1) return false;
      await trx
        .insertInto('holds')
        .values({
          id,
          user_id: userId,
          key_id: keyId,
          amount_micros: amount,
          request_id: requestId,
          created_at: now,
          expires_at: now + ttlMs,
        })
        .execute();
      return true;
    });
  };

  async available(userId: string): Promise<number | null> {
    // SQLite: a prepared read on the connection; inside the group commit's open transaction it sees
    // the holds already answered, exactly what a read after its COMMIT would (ours is the only writer
    // while it holds the write lock), and it does not force that COMMIT as a statement of Kysely's
    // would. Not between two statements of a Kysely transaction, whose changes may yet roll back.
    if (this.fast?.commits.connectionIsOurs()) return this.fast.path.available(userId);
    const row = await this.db
      .selectFrom('users')
      .select(['balance_micros', 'held_micros', 'trial_balance_micros'])
      .where('id', '=', userId)
      .executeTakeFirst();
    return row ? row.balance_micros + (row.trial_balance_micros ?? 0) - row.held_micros : null;
  }

  /**
   * Settle a request: release its hold (if still there), charge `cost` through the ledger and
   * write the usage record, all in one transaction. Trial credits are spent first, then paid
   * credits; each bucket touched gets its own ledger row. Returns the paid balance after.
   */
  async settle(
    holdId: string | null,
    cost: number,
    usage: UsageRecord,
    keyId: string | null,
  ): Promise<number | null> {
    const leases = this.leases;
    if (!leases?.settling(holdId)) {
      const balanceAfter = await this.settleInStorage(holdId, cost, usage, keyId);
      // When this was the user's last request here, a drained lease is being released: once the
      // response is out, the user's balance shows nothing held for requests that are over.
      const back = leases?.givingBackFor(usage.user_id);
      if (back) await back;
      return balanceAfter;
    }
    // A leased hold has no row: the charge is settled without one, then the lease gets back what
    // the hold did not cost (and is released if that was its last request).
    try {
      return await this.settleInStorage(null, cost, usage, keyId);
    } finally {
      const back = leases.settled(holdId!, cost);
      if (back) await back;
    }
  }

  private async settleInStorage(
    holdId: string | null,
    cost: number,
    usage: UsageRecord,
    keyId: string | null,
  ): Promise<number | null> {
    const fast = this.fast;
    if (fast) return fast.commits.run(() => fast.path.settle(holdId, cost, usage, keyId));
    if (this.pgFast) return this.pgFast.settle(holdId, cost, usage, keyId);
    return this.db.transaction().execute(async (trx) => {
      let held = 0;
      if (holdId) {
        const h = await trx
          .deleteFrom('holds')
          .where('id', '=', holdId)
          .returning('amount_micros')
          .executeTakeFirst();
        held = h?.amount_micros ?? 0;
      }
      let balanceAfter: number | null = null;
      let fromTrial = 0;
      let trialAfter = 0;
      if (cost !== 0 || held !== 0) {
        // Common case, one statement: no trial credit, so everything comes from the paid balance.
        const plain = await trx
          .updateTable('users')
          .set({
            balance_micros: sql`balance_micros - ${cost}`,
            held_micros: sql`held_micros - ${held}`,
            updated_at: usage.created_at,
          })
          .where('id', '=', usage.user_id)
          .where((eb) => (cost > 0 ? eb('trial_balance_micros', '<=', 0) : eb.lit(true)))
          .returning(['balance_micros'])
          .executeTakeFirst();
        if (plain) balanceAfter = plain.balance_micros;
        else {
          // Trial credit left: the row is locked (FOR UPDATE; SQLite transactions are serial), so
          // the split between the buckets is exact. Trial credits are spent first.
          let q = trx.selectFrom('users').select('trial_balance_micros').where('id', '=', usage.user_id);
          if (this.dialect === 'postgres') q = q.forUpdate();
          const t = await q.executeTakeFirstOrThrow();
          fromTrial = Math.min(cost, Math.max(0, t.trial_balance_micros ?? 0));
          const u = await trx
            .updateTable('users')
            .set({
              balance_micros: sql`balance_micros - ${cost - fromTrial}`,
              trial_balance_micros: sql`trial_balance_micros - ${fromTrial}`,
              held_micros: sql`held_micros - ${held}`,
              updated_at: usage.created_at,
            })
            .where('id', '=', usage.user_id)
            .returning(['balance_micros', 'trial_balance_micros'])
            .executeTakeFirstOrThrow();
          balanceAfter = u.balance_micros;
          trialAfter = u.trial_balance_micros ?? 0;
        }
      }
      const fromPaid = cost - fromTrial;
      if (fromTrial !== 0) {
        await trx
          .insertInto('ledger')
          .values({
            user_id: usage.user_id,
            kind: 'usage',
            bucket: 'trial',
            amount_micros: -fromTrial,
            balance_after: trialAfter,
            reference: usage.request_id,
            idempotency_key: null,
            description: `${usage.endpoint} ${usage.model} via ${usage.provider} (trial credits)`,
            created_at: usage.created_at,
          })
          .execute();
      }
      if (fromPaid !== 0 && balanceAfter !== null) {
        await trx
          .insertInto('ledger')
          .values({
            user_id: usage.user_id,
            kind: 'usage',
            amount_micros: -fromPaid,
            balance_after: balanceAfter,
            reference: usage.request_id,
            idempotency_key: null,
            description: `${usage.endpoint} ${usage.model} via ${usage.provider}`,
            created_at: usage.created_at,
          })
          .execute();
      }
      if (cost !== 0 && balanceAfter !== null) {
        if (keyId) {
          await trx
            .updateTable('api_keys')
            .set({ spent_micros: sql`spent_micros + ${cost}` })
            .where('id', '=', keyId)
            .execute();
        }
      }
      await trx.insertInto('usage_records').values(usage).execute();
      return balanceAfter;
    });
  }

  /** Drop a hold without charging (the request failed before anything was delivered). */
  async release(holdId: string): Promise<void> {
    return this.leases ? this.leases.release(holdId) : this.releaseInStorage(holdId);
  }

  /** Give back every lease (at shutdown, once no request is in flight). */
  async close(): Promise<void> {
    await this.leases?.close();
  }

  private async releaseInStorage(holdId: string): Promise<void> {
    const fast = this.fast;
    // SQLite: group-committed with the turn's settles, answered after the COMMIT (as a transaction of its own was).
    if (fast) return fast.commits.run(() => fast.path.release(holdId));
    await this.db.transaction().execute(async (trx) => {
      const h = await trx
        .deleteFrom('holds')
        .where('id', '=', holdId)
        .returning(['amount_micros', 'user_id'])
        .executeTakeFirst();
      if (!h) return;
      await trx
        .updateTable('users')
        .set({ held_micros: sql`held_micros - ${h.amount_micros}` })
        .where('id', '=', h.user_id)
        .execute();
    });
  }

  /** Release holds whose process died (expired). Returns how many were released. */
  async releaseExpired(now: number, limit = 500): Promise<number> {
    const expired = await this.db
      .selectFrom('holds')
      .select('id')
      .where('expires_at', '<', now)
      .limit(limit)
      .execute();
    for (const h of expired) await this.releaseInStorage(h.id);
    return expired.length;
  }

  /**
   * Add a ledger entry and move the balance by `amount` (positive credits, negative debits).
   * With an idempotency key, a second call with the same key changes nothing and returns null.
   */
  async post(
    e: LedgerEntry,
    now: number,
    trxIn?: Kysely<Database>,
  ): Promise<{ balanceAfter: number; ledgerId: number } | null> {
    const run = async (trx: Kysely<Database>) => {
      if (e.idempotencyKey) {
        const seen = await trx
          .selectFrom('ledger')
          .select('id')
          .where('idempotency_key', '=', e.idempotencyKey)
          .executeTakeFirst();
        if (seen) return null;
      }
      const trial = e.bucket === 'trial';
      const u = await trx
        .updateTable('users')
        .set(
          trial
            ? { trial_balance_micros: sql`trial_balance_micros + ${e.amount}`, updated_at: now }
            : { balance_micros: sql`balance_micros + ${e.amount}`, updated_at: now },
        )
        .where('id', '=', e.userId)
        .returning(['balance_micros', 'trial_balance_micros'])
        .executeTakeFirst();
      if (!u) throw new Error(`no user ${e.userId}`);
      const after = trial ? (u.trial_balance_micros ?? 0) : u.balance_micros;
      const row = await trx
        .insertInto('ledger')
        .values({
          user_id: e.userId,
          kind: e.kind,
          bucket: trial ? 'trial' : 'paid',
          amount_micros: e.amount,
          balance_after: after,
          reference: e.reference ?? null,
          idempotency_key: e.idempotencyKey ?? null,
          description: e.description ?? null,
          created_at: now,
        })
        .returning('id')
        .executeTakeFirstOrThrow();
      return { balanceAfter: after, ledgerId: Number(row.id) };
    };
    if (trxIn) return run(trxIn).finally(() => this.leases?.balanceChanged(e.userId));
    try {
      return await this.db.transaction().execute(run);
    } catch (err) {
      // The unique constraint is the real guard: a concurrent duplicate loses here.
      if (e.idempotencyKey && isUniqueViolation(err)) return null;
      throw err;
    } finally {
      // A debit must not leave a lease taken from the balance before it in use (hold-leases.ts).
      this.leases?.balanceChanged(e.userId);
    }
  }

  /**
   * What the user has, paid + trial, holds not subtracted (they are money the user still has); null for
   * an unknown user. SQLite: a prepared read that does not commit the group commit's open transaction
   * (see `available`).
   */
  async funds(userId: string): Promise<number | null> {
    if (this.fast?.commits.connectionIsOurs()) return this.fast.path.funds(userId);
    const b = await this.balance(userId);
    return b ? b.balance_micros + (b.trial_balance_micros ?? 0) : null;
  }

  async balance(userId: string) {
    return this.db
      .selectFrom('users')
      .select(['balance_micros', 'held_micros', 'trial_balance_micros', 'status'])
      .where('id', '=', userId)
      .executeTakeFirst();
  }

  /** Σ ledger of one bucket ('paid' by default: equals balance_micros; 'trial' equals trial_balance_micros). */
  async ledgerSum(userId: string, bucket: LedgerBucket = 'paid'): Promise<number> {
    const r = await this.db
      .selectFrom('ledger')
      .select((eb) => eb.fn.coalesce(eb.fn.sum<number>('amount_micros'), sql<number>`0`).as('total'))
      .where('user_id', '=', userId)
      .where('bucket', '=', bucket)
      .executeTakeFirstOrThrow();
    return Number(r.total);
  }
}

export function isUniqueViolation(err: unknown): boolean {
  const e = err as { code?: string; message?: string };
  return (
    e?.code === '23505' ||
    e?.code === 'SQLITE_CONSTRAINT_UNIQUE' ||
    /UNIQUE constraint failed/.test(e?.message ?? '')
  );
}
