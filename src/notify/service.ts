import type { Kysely, Selectable } from 'kysely';
import type { Database, NotificationPrefsTable } from '../db/schema.js';
import type { Outbox } from './outbox.js';
import type { TemplateName } from './templates.js';

export type PrefsRow = Selectable<NotificationPrefsTable>;

/** Which preference switches a template off (welcome and security mails follow email_enabled / security_alerts). */
const CATEGORY: Partial<Record<TemplateName, keyof PrefsRow>> = {
  trial_started: 'trial_reminders',
  trial_ending: 'trial_reminders',
  trial_ended: 'trial_reminders',
  payment_receipt: 'payment_receipts',
  plan_changed: 'plan_changes',
  api_key_created: 'security_alerts',
};

export const defaultPrefs = (userId: string): PrefsRow => ({
  user_id: userId,
  email_enabled: 1,
  low_balance_threshold_micros: null,
  low_balance_alerted: 0,
  trial_reminders: 1,
  payment_receipts: 1,
  plan_changes: 1,
  security_alerts: 1,
  updated_at: 0,
});

/** Notifications to users: preferences, and mails queued in the outbox for the user's address. */
export class Notifier {
  /** Per user: the low-balance threshold and whether the alert is armed (0) or sent (1), as last read. */
  private readonly thresholds = new Map<string, { threshold: number | null; alerted: number; at: number }>();

  constructor(
    private readonly db: Kysely<Database>,
    readonly outbox: Outbox,
    private readonly cacheTtlMs = 5_000,
  ) {}

  async prefs(userId: string, trx: Kysely<Database> = this.db): Promise<PrefsRow> {
    const r = await trx
      .selectFrom('notification_prefs')
      .selectAll()
      .where('user_id', '=', userId)
      .executeTakeFirst();
    return r ?? defaultPrefs(userId);
  }

  async setPrefs(userId: string, patch: Partial<Omit<PrefsRow, 'user_id'>>, now: number): Promise<PrefsRow> {
    const current = await this.prefs(userId);
    const next: PrefsRow = { ...current, ...patch, user_id: userId, updated_at: now };
    if ('low_balance_threshold_micros' in patch) next.low_balance_alerted = 0;
    await this.db
      .insertInto('notification_prefs')
      .values(next)
      .onConflict((oc) => oc.column('user_id').doUpdateSet({ ...next }))
      .execute();
    this.thresholds.delete(userId);
    return next;
  }

  /**
   * Queue `template` for the user's address unless the user turned it off. `dedupeKey` makes the
   * mail happen once, however often the cause is replayed. Pass `trx` to queue with the cause.
   */
  async notify(
    userId: string,
    template: TemplateName,
    data: Record<string, unknown>,
    dedupeKey: string,
    now: number,
    trx: Kysely<Database> = this.db,
  ): Promise<boolean> {
    const u = await trx.selectFrom('users').select(['email']).where('id', '=', userId).executeTakeFirst();
    if (!u?.email) return false;
    const p = await this.prefs(userId, trx);
    if (p.email_enabled !== 1) return false;
    const cat = CATEGORY[template];
    if (cat && p[cat] !== 1) return false;
    return this.outbox.enqueue({ dedupeKey, userId, to: u.email, template, data }, now, trx);
  }

  /** Cached threshold lookup (hot path: after every settled request). */
  private async threshold(
    userId: string,
  ): Promise<{ threshold: number | null; alerted: number; at: number }> {
    const now = Date.now();
    const hit = this.thresholds.get(userId);
    if (hit && now - hit.at < this.cacheTtlMs) return hit;
    const p = await this.prefs(userId);
    const entry = {
      threshold: p.email_enabled === 1 ? p.low_balance_threshold_micros : null,
      alerted: p.low_balance_alerted,
      at: now,
    };
    if (this.thresholds.size > 50_000) this.thresholds.clear();
    this.thresholds.set(userId, entry);
    return entry;
  }

  /** False when the cache knows, fresh, that the user has no low-balance alert (no await on the hot path). */
  mayAlertLowBalance(userId: string): boolean {
    const hit = this.thresholds.get(userId);
    return !hit || hit.threshold !== null || Date.now() - hit.at >= this.cacheTtlMs;
  }

  /**
   * Low-balance alert: once per crossing below the user's threshold (a conditional update arms
   * and disarms it), re-armed when the balance is back above.
   */
  async checkLowBalance(
    userId: string,
    balanceOf: () => Promise<number | null>,
    now = Date.now(),
  ): Promise<void> {
    const t = await this.threshold(userId);
    const threshold = t.threshold;
    if (threshold === null) return;
    const balance = await balanceOf();
    if (balance === null) return;
    if (balance >= threshold) {
      // Re-arm only when the alert was sent, as last read (a write per request otherwise; another
      // instance's alert is seen once the cached prefs expire).
      if (t.alerted === 0) return;
      await this.db
        .updateTable('notification_prefs')
        .set({ low_balance_alerted: 0 })
        .where('user_id', '=', userId)
        .where('low_balance_alerted', '=', 1)
        .execute();
      t.alerted = 0;
      return;
    }
    if (t.alerted === 1) return;
    t.alerted = 1;
    await this.db.transaction().execute(async (trx) => {
      const r = await trx
        .updateTable('notification_prefs')
        .set({ low_balance_alerted: 1 })
        .where('user_id', '=', userId)
        .where('low_balance_alerted', '=', 0)
        .executeTakeFirst();
      if (Number(r.numUpdatedRows) !== 1) return;
      await this.notify(
        userId,
        'low_balance',
        { balance: balance / 1e6, threshold: threshold / 1e6 },
        `low_balance:${userId}:${now}`,
        now,
        trx,
      );
    });
  }
}
