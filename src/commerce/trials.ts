import type { Kysely, Selectable } from 'kysely';
import type { BillingStore } from '../billing/store.js';
import { isUniqueViolation } from '../billing/store.js';
import type { Dialect } from '../db/database.js';
import type { Database, TrialsTable } from '../db/schema.js';
import { GatewayError } from '../lib/errors.js';
import { microsToUsd } from '../lib/money.js';
import type { Notifier } from '../notify/service.js';
import type { CommerceConfig } from './config.js';
import type { TrialCounters } from './trial-counters.js';

export type TrialRow = Selectable<TrialsTable>;
const DAY_MS = 86_400_000;

/**
 * Free trials: one per user, ever (the user id is the primary key). Trial credits live in their
 * own ledger bucket, are spent before paid credits, and what is left is removed through the
 * ledger when the trial ends (time, token cap or request cap).
 */
export class TrialsService {
  /** Users known to have no active trial (the hot path then reads nothing). */
  private readonly state = new Map<string, { active: boolean; at: number }>();

  constructor(
    private readonly db: Kysely<Database>,
    private readonly dialect: Dialect,
    private readonly billing: BillingStore,
    private readonly notifier: Notifier,
    private readonly cfg: CommerceConfig['trial'],
    /** The per-request counters as prepared statements (trial-counters.ts). */
    private readonly counters: TrialCounters,
    private readonly cacheTtlMs = 2_000,
  ) {}

  get(userId: string, trx: Kysely<Database> = this.db): Promise<TrialRow | undefined> {
    return trx.selectFrom('trials').selectAll().where('user_id', '=', userId).executeTakeFirst();
  }

  /** Start the user's trial; a second call returns the same trial (created: false). */
  async start(userId: string, now: number): Promise<{ trial: TrialRow; created: boolean }> {
    const existing = await this.get(userId);
    if (existing) return { trial: existing, created: false };
    const paid = await this.db
      .selectFrom('payments')
      .select('id')
      .where('user_id', '=', userId)
      .where('status', 'in', ['paid', 'refunded', 'partially_refunded'])
      .executeTakeFirst();
    if (paid)
      throw new GatewayError(409, 'Free trials are for accounts that have not purchased yet', {
        code: 'trial_not_available',
      });
    const row: TrialRow = {
      user_id: userId,
      status: 'active',
      started_at: now,
      ends_at: now + this.cfg.durationMs,
      credits_micros: this.cfg.creditsMicros,
      tokens_limit: this.cfg.tokens,
      requests_limit: this.cfg.requests,
      tokens_used: 0,
      requests_used: 0,
      credits_expired: 0,
      reminder_sent: 0,
      ended_at: null,
      end_reason: null,
    };
    try {
      await this.db.transaction().execute(async (trx) => {
        await trx.insertInto('trials').values(row).execute();
        if (row.credits_micros > 0)
          await this.billing.post(
            {
              userId,
              kind: 'trial_grant',
              bucket: 'trial',
              amount: row.credits_micros,
              reference: `trial:${userId}`,
              idempotencyKey: `trial:${userId}`,
              description: 'free trial credits',
            },
            now,
            trx,
          );
        await this.notifier.notify(
          userId,
          'trial_started',
          {
            credits: microsToUsd(row.credits_micros),
            tokens: row.tokens_limit,
            requests: row.requests_limit,
            end_date: row.ends_at,
          },
          `trial_started:${userId}`,
          now,
          trx,
        );
      });
    } catch (err) {
      // A concurrent start won: the primary key is the guard.
      if (!isUniqueViolation(err)) throw err;
      return { trial: (await this.get(userId))!, created: false };
    }
    this.state.delete(userId);
    return { trial: row, created: true };
  }

  async status(userId: string, now: number) {
    const t = await this.get(userId);
    const bal = await this.billing.balance(userId);
    if (!t)
      return {
        is_active: false,
        is_trial: false,
        status: 'none',
        remaining_credits: 0,
        remaining_tokens: 0,
        remaining_requests: 0,
        end_date: null,
      };
    const active = t.status === 'active' && t.ends_at > now;
    const credits = t.credits_expired ? 0 : Math.max(0, bal?.trial_balance_micros ?? 0);
    return {
      is_active: active,
      is_trial: active,
      status: t.status === 'active' && !active ? 'expired' : t.status,
      remaining_credits: microsToUsd(credits),
      remaining_credits_micros: credits,
      remaining_tokens: Math.max(0, t.tokens_limit - t.tokens_used),
      remaining_requests: Math.max(0, t.requests_limit - t.requests_used),
      start_date: new Date(t.started_at).toISOString(),
      end_date: new Date(t.ends_at).toISOString(),
      ...(t.end_reason ? { end_reason: t.end_reason } : {}),
    };
  }

  /** True when the cache knows, fresh, that the user has no active trial (no await on the hot path). */
  knownInactive(userId: string): boolean {
    return this.cachedActive(userId) === false;
  }

  /** Whether the user may have an active trial, as cached and fresh; undefined when not known. */
  private cachedActive(userId: string): boolean | undefined {
    const hit = this.state.get(userId);
    return hit && Date.now() - hit.at < this.cacheTtlMs ? hit.active : undefined;
  }

  private async mayBeActive(userId: string): Promise<boolean> {
    const cached = this.cachedActive(userId);
    if (cached !== undefined) return cached;
    const now = Date.now();
    const t = await this.db
      .selectFrom('trials')
      .select(['status'])
      .where('user_id', '=', userId)
      .executeTakeFirst();
    const active = t?.status === 'active';
    if (this.state.size > 50_000) this.state.clear();
    this.state.set(userId, { active, at: now });
    return active;
  }

  /**
   * Pipeline guard for trial users (every key of the user): counts the request against the
   * trial with one conditional statement; a trial past its time or caps ends here, and the
   * request goes on with whatever paid credit the user has.
   */
  async admit(userId: string, now = Date.now()): Promise<((tokens: number) => Promise<void>) | undefined> {
    if (!(await this.mayBeActive(userId))) return undefined;
    if (!(await this.counters.countRequest(userId, now))) {
      const t = await this.get(userId);
      if (t?.status === 'active') {
        const reason =
          t.ends_at <= now
            ? 'expired'
            : t.requests_used >= t.requests_limit
              ? 'request_limit'
              : 'token_limit';
        await this.end(userId, reason, now);
      }
      return undefined;
    }
    return async (tokens) => {
      if (tokens <= 0) return;
      const u = await this.counters.addTokens(userId, tokens);
      if (u && u.status === 'active' && u.tokens_used >= u.tokens_limit)
        await this.end(userId, 'token_limit', Date.now());
      else if (u && u.status === 'active' && u.requests_used >= u.requests_limit)
        await this.end(userId, 'request_limit', Date.now());
    };
  }

  /**
   * End a trial (time or cap) and remove its remaining credits through the ledger. A converted
   * trial keeps its credits until its end date; then this removes them. Safe to call twice.
   */
  async end(userId: string, reason: string, now: number): Promise<boolean> {
    const changed = await this.db.transaction().execute(async (trx) => {
      let q = trx.selectFrom('trials').selectAll().where('user_id', '=', userId);
      if (this.dialect === 'postgres') q = q.forUpdate();
      const t = await q.executeTakeFirst();
      if (!t) return false;
      let ended = false;
      if (t.status === 'active') {
        const r = await trx
          .updateTable('trials')
          .set({ status: 'expired', ended_at: now, end_reason: reason })
          .where('user_id', '=', userId)
          .where('status', '=', 'active')
          .executeTakeFirst();
        ended = Number(r.numUpdatedRows) === 1;
      }
      let removed = 0;
      if (t.credits_expired === 0 && (t.status === 'active' || t.ends_at <= now)) {
        const r = await trx
          .updateTable('trials')
          .set({ credits_expired: 1 })
          .where('user_id', '=', userId)
          .where('credits_expired', '=', 0)
          .executeTakeFirst();
        if (Number(r.numUpdatedRows) === 1) {
          let uq = trx.selectFrom('users').select('trial_balance_micros').where('id', '=', userId);
          if (this.dialect === 'postgres') uq = uq.forUpdate();
          const u = await uq.executeTakeFirst();
          removed = Math.max(0, u?.trial_balance_micros ?? 0);
          if (removed > 0)
            await this.billing.post(
              {
                userId,
                kind: 'trial_expired',
                bucket: 'trial',
                amount: -removed,
                reference: `trial:${userId}`,
                idempotencyKey: `trial_expired:${userId}`,
                description: `unused trial credits removed (${reason})`,
              },
              now,
              trx,
            );
        }
      }
      if (ended)
        await this.notifier.notify(
          userId,
          'trial_ended',
          { reason, removed_credits: microsToUsd(removed) },
          `trial_ended:${userId}`,
          now,
          trx,
        );
      return ended || removed > 0;
    });
    this.state.delete(userId);
    return changed;
  }

  /** First purchase or plan: the trial's caps stop applying (its credits still expire on the end date). */
  async convert(userId: string, now: number, trx: Kysely<Database>): Promise<boolean> {
    const r = await trx
      .updateTable('trials')
      .set({ status: 'converted', ended_at: now, end_reason: 'converted' })
      .where('user_id', '=', userId)
      .where('status', '=', 'active')
      .executeTakeFirst();
    this.state.delete(userId);
    return Number(r.numUpdatedRows) === 1;
  }

  /** Scheduled: end trials whose time is up and remove their credits. */
  async expireDue(now: number, limit = 200): Promise<number> {
    const due = await this.db
      .selectFrom('trials')
      .select('user_id')
      .where('credits_expired', '=', 0)
      .where('ends_at', '<=', now)
      .limit(limit)
      .execute();
    let n = 0;
    for (const t of due) if (await this.end(t.user_id, 'expired', now)) n++;
    return n;
  }

  /** Scheduled: the "ends tomorrow" mail, once per trial. */
  async remindDue(now: number, limit = 200): Promise<number> {
    const due = await this.db
      .selectFrom('trials')
      .select(['user_id', 'ends_at'])
      .where('status', '=', 'active')
      .where('reminder_sent', '=', 0)
      .where('ends_at', '>', now)
      .where('ends_at', '<=', now + DAY_MS)
      .limit(limit)
      .execute();
    let n = 0;
    for (const t of due) {
      await this.db.transaction().execute(async (trx) => {
        const r = await trx
          .updateTable('trials')
          .set({ reminder_sent: 1 })
          .where('user_id', '=', t.user_id)
          .where('reminder_sent', '=', 0)
          .executeTakeFirst();
        if (Number(r.numUpdatedRows) !== 1) return;
        const u = await trx
          .selectFrom('users')
          .select('trial_balance_micros')
          .where('id', '=', t.user_id)
          .executeTakeFirst();
        await this.notifier.notify(
          t.user_id,
          'trial_ending',
          { end_date: t.ends_at, remaining_credits: microsToUsd(u?.trial_balance_micros ?? 0) },
          `trial_ending:${t.user_id}`,
          now,
          trx,
        );
        n++;
      });
    }
    return n;
  }
}
