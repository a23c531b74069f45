import { type Kysely, sql } from 'kysely';
import { isUniqueViolation } from '../billing/store.js';
import type { Database } from '../db/schema.js';
import { GatewayError, notFound } from '../lib/errors.js';
import { microsToUsd } from '../lib/money.js';
import type { AccountsService } from './service.js';
import type { UserRow } from './store.js';

export function profileView(u: UserRow) {
  return {
    user_id: u.id,
    username: u.username,
    email: u.email,
    display_name: u.display_name ?? null,
    role: u.role,
    status: u.status,
    credits: microsToUsd(u.balance_micros),
    referral_code: u.referral_code ?? null,
    referred_by_code: u.referred_by_code ?? null,
    privy_linked: Boolean(u.privy_id),
    created_at: new Date(u.created_at).toISOString(),
  };
}

/** A user's own profile, ledger view and account deletion. */
export class ProfileService {
  private readonly deletedListeners: Array<(userId: string) => Promise<void> | void> = [];

  constructor(
    private readonly db: Kysely<Database>,
    private readonly accounts: AccountsService,
  ) {}

  /** Other features remove their personal data of a deleted account here (history, sessions…). */
  onAccountDeleted(fn: (userId: string) => Promise<void> | void): void {
    this.deletedListeners.push(fn);
  }

  async get(userId: string): Promise<UserRow> {
    const u = await this.accounts.store.findUser(userId);
    if (!u || u.status === 'deleted') throw notFound('No such user', 'user_not_found');
    return u;
  }

  async update(
    userId: string,
    b: { username?: string | null; email?: string | null; display_name?: string | null },
  ) {
    const patch: Partial<UserRow> = { updated_at: Date.now() };
    if (b.username !== undefined) patch.username = b.username;
    if (b.email !== undefined) patch.email = b.email === null ? null : b.email.toLowerCase();
    if (b.display_name !== undefined) patch.display_name = b.display_name;
    try {
      await this.accounts.store.updateUser(userId, patch);
    } catch (err) {
      if (isUniqueViolation(err))
        throw new GatewayError(409, 'This username or email is taken', { code: 'profile_conflict' });
      throw err;
    }
    return this.get(userId);
  }

  /** Revoke every key and remove personal data; the ledger (money history) is kept. */
  async deleteAccount(userId: string): Promise<string[]> {
    const now = Date.now();
    const keyIds = await this.db.transaction().execute(async (trx) => {
      const ids = await this.accounts.store.deleteKeysOfUser(userId, trx);
      await trx
        .updateTable('users')
        .set({
          email: null,
          username: null,
          privy_id: null,
          display_name: null,
          status: 'deleted',
          deleted_at: now,
          updated_at: now,
        })
        .where('id', '=', userId)
        .execute();
      return ids;
    });
    for (const id of keyIds) this.accounts.invalidateKey(id);
    this.accounts.invalidateUser(userId);
    for (const fn of this.deletedListeners) await fn(userId);
    return keyIds;
  }

  async creditTransactions(userId: string, limit: number, offset: number) {
    const base = this.db.selectFrom('ledger').where('user_id', '=', userId);
    const [rows, count] = await Promise.all([
      base.selectAll().orderBy('id', 'desc').limit(limit).offset(offset).execute(),
      base.select(sql<number>`count(*)`.as('n')).executeTakeFirstOrThrow(),
    ]);
    return {
      total: Number(count.n),
      transactions: rows.map((r) => ({
        id: Number(r.id),
        kind: r.kind,
        amount_usd: microsToUsd(r.amount_micros),
        amount_micros: r.amount_micros,
        balance_after_usd: microsToUsd(r.balance_after),
        reference: r.reference,
        description: r.description,
        created_at: new Date(r.created_at).toISOString(),
      })),
    };
  }
}
