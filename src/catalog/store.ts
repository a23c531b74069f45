import type { Kysely, Selectable } from 'kysely';
import type { Database, ModelsTable, ProviderSyncTable } from '../db/schema.js';

export type ModelRow = Selectable<ModelsTable>;
export type ProviderSyncRow = Selectable<ProviderSyncTable>;

export class CatalogStore {
  constructor(private readonly db: Kysely<Database>) {}

  allModels(): Promise<ModelRow[]> {
    return this.db.selectFrom('models').selectAll().orderBy('model_id').execute();
  }

  /** Replace one provider's catalog atomically. */
  async replaceProvider(provider: string, rows: ModelRow[], now: number): Promise<void> {
    await this.db.transaction().execute(async (trx) => {
      await trx.deleteFrom('models').where('provider', '=', provider).execute();
      for (let i = 0; i < rows.length; i += 200) {
        await trx
          .insertInto('models')
          .values(rows.slice(i, i + 200))
          .execute();
      }
      await this.upsertSync(trx, {
        provider,
        status: 'ok',
        model_count: rows.length,
        last_sync_at: now,
        last_error: null,
      });
    });
  }

  async markFailed(provider: string, error: string): Promise<void> {
    const prev = await this.db
      .selectFrom('provider_sync')
      .selectAll()
      .where('provider', '=', provider)
      .executeTakeFirst();
    await this.upsertSync(this.db, {
      provider,
      status: 'error',
      model_count: prev?.model_count ?? 0,
      last_sync_at: prev?.last_sync_at ?? null,
      last_error: error.slice(0, 500),
    });
  }

  syncStatus(): Promise<ProviderSyncRow[]> {
    return this.db.selectFrom('provider_sync').selectAll().execute();
  }

  private async upsertSync(db: Kysely<Database>, row: ProviderSyncRow): Promise<void> {
    await db
      .insertInto('provider_sync')
      .values(row)
      .onConflict((oc) => oc.column('provider').doUpdateSet(row))
      .execute();
  }
}
