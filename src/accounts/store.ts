import { type Kysely, type Selectable, sql } from 'kysely';
import type { ApiKeysTable, Database, UsersTable } from '../db/schema.js';

export type UserRow = Selectable<UsersTable>;
export type KeyRow = Selectable<ApiKeysTable>;

/** SQL for users and API keys. */
export class AccountsStore {
  constructor(private readonly db: Kysely<Database>) {}

  async insertUser(user: UserRow, key: KeyRow | null, trx: Kysely<Database> = this.db): Promise<void> {
    await trx.insertInto('users').values(user).execute();
    if (key) await trx.insertInto('api_keys').values(key).execute();
  }

  insertKey(key: KeyRow, trx: Kysely<Database> = this.db): Promise<unknown> {
    return trx.insertInto('api_keys').values(key).execute();
  }

  findUser(id: string): Promise<UserRow | undefined> {
    return this.db.selectFrom('users').selectAll().where('id', '=', id).executeTakeFirst();
  }

  findUserByEmail(email: string): Promise<UserRow | undefined> {
    return this.db.selectFrom('users').selectAll().where('email', '=', email).executeTakeFirst();
  }

  findUserByUsername(username: string): Promise<UserRow | undefined> {
    return this.db.selectFrom('users').selectAll().where('username', '=', username).executeTakeFirst();
  }

  /**
   * The key and its owner in one read, by the key's HMAC (unique index: O(1)), or by the HMAC
   * of the secret a rotation replaced while its grace period lasts.
   */
  findKeyWithUser(hash: string, now = Date.now()) {
    return this.db
      .selectFrom('api_keys as k')
      .innerJoin('users as u', 'u.id', 'k.user_id')
      .selectAll('k')
      .select(['u.role as user_role', 'u.status as user_status'])
      .where((eb) =>
        eb.or([
          eb('k.key_hash', '=', hash),
          eb.and([eb('k.previous_key_hash', '=', hash), eb('k.previous_expires_at', '>', now)]),
        ]),
      )
      .executeTakeFirst();
  }

  /** +1 on a capped key's request count, only while under the cap (one statement, no race). */
  async incrementRequestCount(id: string): Promise<boolean> {
    const r = await this.db
      .updateTable('api_keys')
      .set({ request_count: sql`request_count + 1` })
      .where('id', '=', id)
      .where((eb) =>
        eb.or([eb('max_requests', 'is', null), eb('request_count', '<', eb.ref('max_requests'))]),
      )
      .executeTakeFirst();
    return Number(r.numUpdatedRows) === 1;
  }

  async touchKeys(batch: Array<[string, number]>): Promise<void> {
    await this.db.transaction().execute(async (trx) => {
      for (const [id, at] of batch)
        await trx.updateTable('api_keys').set({ last_used_at: at }).where('id', '=', id).execute();
    });
  }

  countKeys(userId: string): Promise<number> {
    return this.db
      .selectFrom('api_keys')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('user_id', '=', userId)
      .executeTakeFirstOrThrow()
      .then((r) => Number(r.n));
  }

  findUserByReferralCode(code: string): Promise<UserRow | undefined> {
    return this.db.selectFrom('users').selectAll().where('referral_code', '=', code).executeTakeFirst();
  }

  findUserByPrivyId(privyId: string): Promise<UserRow | undefined> {
    return this.db.selectFrom('users').selectAll().where('privy_id', '=', privyId).executeTakeFirst();
  }

  async deleteKey(id: string, trx: Kysely<Database> = this.db): Promise<void> {
    await trx.deleteFrom('api_keys').where('id', '=', id).execute();
  }

  async deleteKeysOfUser(userId: string, trx: Kysely<Database> = this.db): Promise<string[]> {
    const rows = await trx.selectFrom('api_keys').select('id').where('user_id', '=', userId).execute();
    await trx.deleteFrom('api_keys').where('user_id', '=', userId).execute();
    return rows.map((r) => r.id);
  }

  findKeyByHash(hash: string): Promise<KeyRow | undefined> {
    return this.db.selectFrom('api_keys').selectAll().where('key_hash', '=', hash).executeTakeFirst();
  }

  findKey(id: string): Promise<KeyRow | undefined> {
    return this.db.selectFrom('api_keys').selectAll().where('id', '=', id).executeTakeFirst();
  }

  listKeys(userId: string): Promise<KeyRow[]> {
    return this.db
      .selectFrom('api_keys')
      .selectAll()
      .where('user_id', '=', userId)
      .orderBy('created_at')
      .execute();
  }

  async updateKey(id: string, patch: Partial<KeyRow>, trx: Kysely<Database> = this.db): Promise<void> {
    await trx.updateTable('api_keys').set(patch).where('id', '=', id).execute();
  }

  async updateUser(id: string, patch: Partial<UserRow>, trx: Kysely<Database> = this.db): Promise<void> {
    await trx.updateTable('users').set(patch).where('id', '=', id).execute();
  }

  async touchKey(id: string, at: number): Promise<void> {
    await this.db.updateTable('api_keys').set({ last_used_at: at }).where('id', '=', id).execute();
  }
}
