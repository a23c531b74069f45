import { type Kysely, type Selectable, sql } from 'kysely';
import type { BillingStore } from '../billing/store.js';
import { isUniqueViolation } from '../billing/store.js';
import type { CouponsTable, Database } from '../db/schema.js';
import { GatewayError } from '../lib/errors.js';
import { newId } from '../lib/ids.js';
import { microsToUsd } from '../lib/money.js';

export type CouponRow = Selectable<CouponsTable>;
export type CouponKind = 'credit' | 'percent' | 'fixed';

export interface CouponInput {
  code: string;
  kind: CouponKind;
  /** credit/fixed: micro-dollars; percent: basis points (1% = 100). */
  value: number;
  userId?: string | null;
  validFrom?: number | null;
  validUntil?: number | null;
  maxUses?: number | null;
  oncePerUser?: boolean;
  newUsersOnly?: boolean;
  planIds?: string[] | null;
  isActive?: boolean;
  description?: string | null;
}

const conflict = (message: string, code: string) => new GatewayError(409, message, { code });
export const normalizeCode = (code: string) => code.trim().toUpperCase();

export function couponJson(c: CouponRow) {
  return {
    id: c.id,
    code: c.code,
    kind: c.kind,
    value: c.kind === 'percent' ? c.value / 100 : microsToUsd(c.value),
    user_id: c.user_id,
    valid_from: c.valid_from === null ? null : new Date(c.valid_from).toISOString(),
    valid_until: c.valid_until === null ? null : new Date(c.valid_until).toISOString(),
    max_uses: c.max_uses,
    uses: c.uses,
    once_per_user: c.once_per_user === 1,
    new_users_only: c.new_users_only === 1,
    plan_ids: c.plan_ids ? (JSON.parse(c.plan_ids) as string[]) : null,
    is_active: c.is_active === 1,
    description: c.description,
    created_at: new Date(c.created_at).toISOString(),
  };
}

/**
 * Coupons: credit grants redeemed by code, and discounts applied to top-ups at checkout.
 * Redemption is one transaction: a conditional use-count increment and a redemption row whose
 * unique constraint stops a second redemption by the same user.
 */
export class CouponsService {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly billing: BillingStore,
    private readonly planOf: (userId: string, trx: Kysely<Database>) => Promise<{ id: string }>,
  ) {}

  async create(input: CouponInput, now: number): Promise<CouponRow> {
    const row: CouponRow = {
      id: newId('cpn'),
      code: normalizeCode(input.code),
      kind: input.kind,
      value: input.value,
      user_id: input.userId ?? null,
      valid_from: input.validFrom ?? null,
      valid_until: input.validUntil ?? null,
      max_uses: input.maxUses ?? null,
      uses: 0,
      once_per_user: input.oncePerUser === false ? 0 : 1,
      new_users_only: input.newUsersOnly ? 1 : 0,
      plan_ids: input.planIds ? JSON.stringify(input.planIds) : null,
      is_active: input.isActive === false ? 0 : 1,
      description: input.description ?? null,
      created_at: now,
      updated_at: now,
    };
    validate(row);
    try {
      await this.db.insertInto('coupons').values(row).execute();
    } catch (err) {
      if (isUniqueViolation(err)) throw conflict(`A coupon with code ${row.code} exists`, 'coupon_exists');
      throw err;
    }
    return row;
  }

  async update(id: string, patch: Partial<CouponInput>, now: number): Promise<CouponRow> {
    const c = await this.get(id);
    const next: CouponRow = {
      ...c,
      ...(patch.value !== undefined ? { value: patch.value } : {}),
      ...(patch.userId !== undefined ? { user_id: patch.userId } : {}),
      ...(patch.validFrom !== undefined ? { valid_from: patch.validFrom } : {}),
      ...(patch.validUntil !== undefined ? { valid_until: patch.validUntil } : {}),
      ...(patch.maxUses !== undefined ? { max_uses: patch.maxUses } : {}),
      ...(patch.oncePerUser !== undefined ? { once_per_user: patch.oncePerUser ? 1 : 0 } : {}),
      ...(patch.newUsersOnly !== undefined ? { new_users_only: patch.newUsersOnly ? 1 : 0 } : {}),
      ...(patch.planIds !== undefined
        ? { plan_ids: patch.planIds ? JSON.stringify(patch.planIds) : null }
        : {}),
      ...(patch.isActive !== undefined ? { is_active: patch.isActive ? 1 : 0 } : {}),
      ...(patch.description !== undefined ? { description: patch.description } : {}),
      updated_at: now,
    };
    validate(next);
    const { id: _id, code: _code, kind: _kind, uses: _uses, created_at: _c, ...set } = next;
    await this.db.updateTable('coupons').set(set).where('id', '=', id).execute();
    return next;
  }

  async get(id: string): Promise<CouponRow> {
    const c = await this.db.selectFrom('coupons').selectAll().where('id', '=', id).executeTakeFirst();
    if (!c) throw new GatewayError(404, 'No such coupon', { code: 'coupon_not_found' });
    return c;
  }

  list(limit: number, offset: number): Promise<CouponRow[]> {
    return this.db
      .selectFrom('coupons')
      .selectAll()
      .orderBy('created_at', 'desc')
      .limit(limit)
      .offset(offset)
      .execute();
  }

  /** Deactivate (redemptions keep pointing at it). */
  async deactivate(id: string, now: number): Promise<void> {
    await this.get(id);
    await this.db
      .updateTable('coupons')
      .set({ is_active: 0, updated_at: now })
      .where('id', '=', id)
      .execute();
  }

  /** Everything but the use count: window, owner, new-user and plan restrictions. */
  private async check(c: CouponRow, userId: string, now: number, trx: Kysely<Database>, planId?: string) {
    if (c.is_active !== 1) throw conflict('This coupon is no longer active', 'coupon_inactive');
    if (c.valid_from !== null && now < c.valid_from)
      throw conflict('This coupon is not valid yet', 'coupon_not_yet_valid');
    if (c.valid_until !== null && now >= c.valid_until)
      throw conflict('This coupon has expired', 'coupon_expired');
    if (c.user_id !== null && c.user_id !== userId)
      throw new GatewayError(404, 'No such coupon', { code: 'coupon_not_found', param: 'code' });
    if (c.new_users_only === 1) {
      const paid = await trx
        .selectFrom('payments')
        .select('id')
        .where('user_id', '=', userId)
        .where('status', 'in', ['paid', 'refunded', 'partially_refunded'])
        .executeTakeFirst();
      if (paid) throw conflict('This coupon is for new customers only', 'coupon_new_users_only');
    }
    if (c.plan_ids) {
      const allowed = JSON.parse(c.plan_ids) as string[];
      const plan = planId ?? (await this.planOf(userId, trx)).id;
      if (!allowed.includes(plan))
        throw conflict(`This coupon applies to the plans ${allowed.join(', ')} only`, 'coupon_plan_mismatch');
    }
  }

  private async byCode(code: string, trx: Kysely<Database>): Promise<CouponRow> {
    const c = await trx
      .selectFrom('coupons')
      .selectAll()
      .where('code', '=', normalizeCode(code))
      .executeTakeFirst();
    if (!c) throw new GatewayError(404, 'No such coupon', { code: 'coupon_not_found', param: 'code' });
    return c;
  }

  /** Redeem a credit coupon: exactly one ledger row, however many concurrent attempts. */
  async redeem(userId: string, code: string, now: number) {
    try {
      return await this.db.transaction().execute(async (trx) => {
        const c = await this.byCode(code, trx);
        if (c.kind !== 'credit')
          throw new GatewayError(400, 'This coupon is a discount; give it as coupon_code at checkout', {
            code: 'coupon_is_discount',
            param: 'code',
          });
        await this.check(c, userId, now, trx);
        const uniqueness = c.once_per_user === 1 ? userId : newId('red');
        await this.claim(c, trx);
        const red = await trx
          .insertInto('coupon_redemptions')
          .values({
            coupon_id: c.id,
            user_id: userId,
            uniqueness,
            amount_micros: c.value,
            payment_id: null,
            ledger_id: null,
            created_at: now,
          })
          .returning('id')
          .executeTakeFirstOrThrow();
        const r = await this.billing.post(
          {
            userId,
            kind: 'coupon',
            amount: c.value,
            reference: `coupon_redemption:${red.id}`,
            idempotencyKey: `coupon:${c.id}:${uniqueness}`,
            description: `coupon ${c.code}`,
          },
          now,
          trx,
        );
        if (!r) throw conflict('You have already redeemed this coupon', 'coupon_already_redeemed');
        await trx
          .updateTable('coupon_redemptions')
          .set({ ledger_id: r.ledgerId })
          .where('id', '=', Number(red.id))
          .execute();
        return {
          coupon_code: c.code,
          coupon_value: microsToUsd(c.value),
          previous_balance: microsToUsd(r.balanceAfter - c.value),
          new_balance: microsToUsd(r.balanceAfter),
          ledger_id: r.ledgerId,
        };
      });
    } catch (err) {
      if (isUniqueViolation(err))
        throw conflict('You have already redeemed this coupon', 'coupon_already_redeemed');
      throw err;
    }
  }

  /** One conditional statement: a use is taken only while uses < max_uses. */
  private async claim(c: CouponRow, trx: Kysely<Database>): Promise<void> {
    const r = await trx
      .updateTable('coupons')
      .set({ uses: sql`uses + 1` })
      .where('id', '=', c.id)
      .where('is_active', '=', 1)
      .where((eb) => eb.or([eb('max_uses', 'is', null), eb('uses', '<', eb.ref('max_uses'))]))
      .executeTakeFirst();
    if (Number(r.numUpdatedRows) !== 1) throw conflict('This coupon has been used up', 'coupon_exhausted');
  }

  /** Checkout: the discount a coupon gives on `priceMicros` (validated, not yet used). */
  async discountFor(userId: string, code: string, priceMicros: number, now: number, planId?: string) {
    const c = await this.byCode(code, this.db);
    if (c.kind === 'credit')
      throw new GatewayError(400, 'This coupon grants credits; redeem it with POST /coupons/redeem', {
        code: 'coupon_is_credit',
        param: 'coupon_code',
      });
    await this.check(c, userId, now, this.db, planId);
    if (c.max_uses !== null && c.uses >= c.max_uses)
      throw conflict('This coupon has been used up', 'coupon_exhausted');
    if (c.once_per_user === 1) {
      const used = await this.db
        .selectFrom('coupon_redemptions')
        .select('id')
        .where('coupon_id', '=', c.id)
        .where('user_id', '=', userId)
        .executeTakeFirst();
      if (used) throw conflict('You have already used this coupon', 'coupon_already_redeemed');
    }
    const discount =
      c.kind === 'percent' ? Math.floor((priceMicros * c.value) / 10_000) : Math.min(priceMicros, c.value);
    return { coupon: c, discountMicros: discount };
  }

  /**
   * A paid checkout used a discount coupon: record the use. The customer has paid, so a coupon
   * used up meanwhile is still honoured; the unique constraint keeps it to one row per payment.
   */
  async recordDiscountUse(
    couponId: string,
    userId: string,
    paymentId: string,
    discount: number,
    now: number,
    trx: Kysely<Database>,
  ) {
    const c = await trx
      .selectFrom('coupons')
      .select(['once_per_user'])
      .where('id', '=', couponId)
      .executeTakeFirst();
    if (!c) return;
    const r = await trx
      .insertInto('coupon_redemptions')
      .values({
        coupon_id: couponId,
        user_id: userId,
        uniqueness: c.once_per_user === 1 ? userId : `payment:${paymentId}`,
        amount_micros: discount,
        payment_id: paymentId,
        ledger_id: null,
        created_at: now,
      })
      .onConflict((oc) => oc.columns(['coupon_id', 'uniqueness']).doNothing())
      .executeTakeFirst();
    if (Number(r.numInsertedOrUpdatedRows ?? 0n) === 1)
      await trx.updateTable('coupons').set({ uses: sql`uses + 1` }).where('id', '=', couponId).execute();
  }

  async history(userId: string) {
    const rows = await this.db
      .selectFrom('coupon_redemptions as r')
      .innerJoin('coupons as c', 'c.id', 'r.coupon_id')
      .select(['r.id', 'c.code', 'c.kind', 'r.amount_micros', 'r.payment_id', 'r.ledger_id', 'r.created_at'])
      .where('r.user_id', '=', userId)
      .orderBy('r.id', 'desc')
      .limit(200)
      .execute();
    return rows.map((r) => ({
      id: Number(r.id),
      coupon_code: r.code,
      kind: r.kind,
      value: microsToUsd(r.amount_micros),
      payment_id: r.payment_id,
      ledger_id: r.ledger_id === null ? null : Number(r.ledger_id),
      redeemed_at: new Date(r.created_at).toISOString(),
    }));
  }
}

function validate(c: CouponRow): void {
  if (!/^[A-Z0-9_-]{3,64}$/.test(c.code))
    throw new GatewayError(400, 'code must be 3-64 letters, digits, _ or -', { param: 'code' });
  if (!['credit', 'percent', 'fixed'].includes(c.kind))
    throw new GatewayError(400, 'kind must be credit, percent or fixed', { param: 'kind' });
  if (!Number.isSafeInteger(c.value) || c.value <= 0)
    throw new GatewayError(400, 'value must be positive', { param: 'value' });
  if (c.kind === 'percent' && c.value > 10_000)
    throw new GatewayError(400, 'a percent discount is at most 100', { param: 'value' });
  if (c.valid_from !== null && c.valid_until !== null && c.valid_until <= c.valid_from)
    throw new GatewayError(400, 'valid_until must be after valid_from', { param: 'valid_until' });
}
