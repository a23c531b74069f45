import type { Kysely } from 'kysely';
import type { BillingStore } from '../billing/store.js';
import type { Dialect } from '../db/database.js';
import type { Database } from '../db/schema.js';
import { GatewayError } from '../lib/errors.js';
import { microsToUsd } from '../lib/money.js';
import type { CommerceConfig } from './config.js';

/**
 * Referrals: `users.referral_code` (each user's own code) and `users.referred_by_code` (the code
 * given at sign-up) belong to accounts (migration 010). When a referred user's first purchase is
 * at least the minimum, both users get the reward: one reward row per referred user and per
 * slot (1..max) of the referrer — unique constraints, so never twice and never past the cap.
 */
export class ReferralsService {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly dialect: Dialect,
    private readonly billing: BillingStore,
    private readonly cfg: CommerceConfig['referral'],
  ) {}

  async code(userId: string): Promise<string> {
    const u = await this.db
      .selectFrom('users')
      .select(['referral_code'])
      .where('id', '=', userId)
      .executeTakeFirst();
    if (!u?.referral_code)
      throw new GatewayError(404, 'This account has no referral code yet', { code: 'referral_code_missing' });
    return u.referral_code;
  }

  /**
   * Link a user to a referrer by code (sign-up, or later while the user has bought nothing).
   * No self-referral; a link is never replaced (one conditional statement).
   */
  async link(userId: string, given: string): Promise<{ referrer_user_id: string }> {
    const code = given.trim().toUpperCase();
    const referrer = await this.db
      .selectFrom('users')
      .select(['id'])
      .where('referral_code', '=', code)
      .executeTakeFirst();
    if (!referrer)
      throw new GatewayError(404, 'No such referral code', {
        code: 'referral_code_not_found',
        param: 'code',
      });
    if (referrer.id === userId)
      throw new GatewayError(400, 'You cannot use your own referral code', {
        code: 'self_referral',
        param: 'code',
      });
    const bought = await this.db
      .selectFrom('payments')
      .select('id')
      .where('user_id', '=', userId)
      .where('status', 'in', ['paid', 'refunded', 'partially_refunded'])
      .executeTakeFirst();
    if (bought)
      throw new GatewayError(409, 'A referral code can only be added before the first purchase', {
        code: 'referral_too_late',
      });
    const r = await this.db
      .updateTable('users')
      .set({ referred_by_code: code })
      .where('id', '=', userId)
      .where('referred_by_code', 'is', null)
      .executeTakeFirst();
    if (Number(r.numUpdatedRows) !== 1)
      throw new GatewayError(409, 'This account is already linked to a referrer', {
        code: 'already_referred',
      });
    return { referrer_user_id: referrer.id };
  }

  async stats(userId: string) {
    const code = await this.code(userId);
    const referred = await this.db
      .selectFrom('users')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('referred_by_code', '=', code)
      .executeTakeFirstOrThrow();
    const rewards = await this.db
      .selectFrom('referral_rewards')
      .select(['referred_user_id', 'amount_micros', 'created_at'])
      .where('referrer_user_id', '=', userId)
      .orderBy('id')
      .execute();
    const earned = rewards.reduce((s, r) => s + r.amount_micros, 0);
    return {
      referral_code: code,
      total_referrals: Number(referred.n),
      completed_referrals: rewards.length,
      total_earned: microsToUsd(earned),
      rewards_remaining: Math.max(0, this.cfg.maxRewardsPerCode - rewards.length),
      reward_per_referral: microsToUsd(this.cfg.rewardMicros),
      min_purchase: microsToUsd(this.cfg.minPurchaseMicros),
      rewards: rewards.map((r) => ({
        referred_user_id: r.referred_user_id,
        amount: microsToUsd(r.amount_micros),
        at: new Date(r.created_at).toISOString(),
      })),
    };
  }

  /**
   * Called in the transaction that marks a payment paid: rewards both users when this is the
   * referred user's first purchase and it is large enough. The referrer's row is locked first, so
   * concurrent first purchases of one referrer's users take slots one at a time.
   */
  async onPurchase(
    userId: string,
    paymentId: string,
    paidMicros: number,
    now: number,
    trx: Kysely<Database>,
  ): Promise<boolean> {
    if (this.cfg.rewardMicros <= 0 || paidMicros < this.cfg.minPurchaseMicros) return false;
    const me = await trx
      .selectFrom('users')
      .select(['referred_by_code'])
      .where('id', '=', userId)
      .executeTakeFirst();
    if (!me?.referred_by_code) return false;
    let rq = trx.selectFrom('users').select(['id']).where('referral_code', '=', me.referred_by_code);
    if (this.dialect === 'postgres') rq = rq.forUpdate();
    const referrer = await rq.executeTakeFirst();
    if (!referrer || referrer.id === userId) return false;
    const earlier = await trx
      .selectFrom('payments')
      .select('id')
      .where('user_id', '=', userId)
      .where('id', '!=', paymentId)
      .where('status', 'in', ['paid', 'refunded', 'partially_refunded'])
      .executeTakeFirst();
    if (earlier) return false;
    const done = await trx
      .selectFrom('referral_rewards')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('referrer_user_id', '=', referrer.id)
      .executeTakeFirstOrThrow();
    const slot = Number(done.n) + 1;
    if (slot > this.cfg.maxRewardsPerCode) return false;
    await trx
      .insertInto('referral_rewards')
      .values({
        referrer_user_id: referrer.id,
        referred_user_id: userId,
        code: me.referred_by_code,
        slot,
        payment_id: paymentId,
        amount_micros: this.cfg.rewardMicros,
        created_at: now,
      })
      .execute();
    for (const [who, role] of [
      [referrer.id, 'referrer'],
      [userId, 'referred'],
    ] as const) {
      await this.billing.post(
        {
          userId: who,
          kind: 'referral_reward',
          amount: this.cfg.rewardMicros,
          reference: `referral:${userId}:${paymentId}`,
          idempotencyKey: `referral:${userId}:${role}`,
          description:
            role === 'referrer' ? 'referral reward (your referral bought credits)' : 'referral bonus',
        },
        now,
        trx,
      );
    }
    return true;
  }
}
