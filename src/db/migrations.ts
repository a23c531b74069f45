import { type Kysely, type Migration, type MigrationProvider, Migrator } from 'kysely';
import type { Dialect } from './database.js';
import * as m001 from './migrations/001_core.js';

/**
 * One set of migrations for SQLite and PostgreSQL, applied in name order at start.
 * A feature that owns tables adds a file under migrations/ and one line here.
 */
type Step = { up: (db: Kysely<any>, dialect: Dialect) => Promise<void> };
const steps: Record<string, Step> = {
  '001_core': m001,
};

export async function migrateToLatest(db: Kysely<any>, dialect: Dialect): Promise<void> {
  const provider: MigrationProvider = {
    async getMigrations() {
      const out: Record<string, Migration> = {};
      for (const [name, step] of Object.entries(steps)) out[name] = { up: (d) => step.up(d, dialect) };
      return out;
    },
  };
  const { error, results } = await new Migrator({ db, provider }).migrateToLatest();
  if (error) {
    const failed = results?.find((r) => r.status === 'Error');
    throw new Error(`migration ${failed?.migrationName ?? ''} failed: ${(error as Error).message ?? error}`);
  }
}
