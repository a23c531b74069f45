import type { CompiledQuery, Kysely, Selectable } from 'kysely';
import { sql } from 'kysely';
import type { Database, RateLimitOverridesTable } from '../db/schema.js';

export type OverrideRow = Selectable<RateLimitOverridesTable>;
export type SubjectType = 'user' | 'key';

/** SQL of the admin-set limit overrides. */
export class LimitsStore {
  /** `version()`'s query, compiled on first use. */
  private versionQuery: CompiledQuery<{ n: number; m: number }> | undefined;

  constructor(private readonly db: Kysely<Database>) {}

  find(type: SubjectType, id: string): Promise<OverrideRow | undefined> {
    return this.db
      .selectFrom('rate_limit_overrides')
      .selectAll()
      .where('subject_type', '=', type)
      .where('subject_id', '=', id)
      .executeTakeFirst();
  }

  /** Insert or replace the override of one subject (one statement, no read-then-write). */
  async upsert(row: OverrideRow): Promise<void> {
    const { subject_type: _t, subject_id: _i, created_at: _c, ...update } = row;
    await this.db
      .insertInto('rate_limit_overrides')
      .values(row)
      .onConflict((oc) => oc.columns(['subject_type', 'subject_id']).doUpdateSet(update))
      .execute();
  }

  list(filter: { userId?: string; limit: number; offset: number }): Promise<OverrideRow[]> {
    let q = this.db.selectFrom('rate_limit_overrides').selectAll();
    if (filter.userId) q = q.where('user_id', '=', filter.userId);
    return q
      .orderBy('updated_at', 'desc')
      .orderBy('subject_id')
      .limit(filter.limit)
      .offset(filter.offset)
      .execute();
  }

  /**
   * A cheap fingerprint of the table: changes whenever a row is added or changed. Polled twice a
   * second without Redis (src/limits/service.ts), idle or not: the query is built and compiled once.
   */
  async version(): Promise<string> {
    this.versionQuery ??= this.db
      .selectFrom('rate_limit_overrides')
      .select([sql<number>`count(*)`.as('n'), sql<number>`max(updated_at)`.as('m')])
      .compile();
    const r = (await this.db.executeQuery(this.versionQuery)).rows[0];
    return `${r?.n ?? 0}:${r?.m ?? 0}`;
  }

  /** Requests and tokens of a user's charged usage since `from` (plan usage report; not the hot path). */
  async usageSince(
    userId: string,
    from: number,
    keyId: string | null = null,
  ): Promise<{ requests: number; tokens: number }> {
    let q = this.db
      .selectFrom('usage_records')
      .select([
        sql<number>`count(*)`.as('requests'),
        sql<number>`coalesce(sum(prompt_tokens + completion_tokens), 0)`.as('tokens'),
      ])
      .where('user_id', '=', userId);
    if (keyId) q = q.where('key_id', '=', keyId);
    const r = await q
      .where('created_at', '>=', from)
      .where('status', 'not like', 'error%')
      .executeTakeFirst();
    return { requests: Number(r?.requests ?? 0), tokens: Number(r?.tokens ?? 0) };
  }
}
