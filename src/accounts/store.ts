import type { Kysely, Selectable } from 'kysely';
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

  /** The key and its owner in one read, by the key's HMAC (unique index: O(1)). */
  findKeyWithUser(hash: string) {
    return this.db
      .selectFrom('api_keys as k')
      .innerJoin('users as u', 'u.id', 'k.user_id')
      .selectAll('k')
      .select(['u.role as user_role', 'u.status as user_status'])
      .where('k.key_hash', '=', hash)
      .executeTakeFirst();
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
