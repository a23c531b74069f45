import { type Kysely, type Migration, type MigrationProvider, Migrator } from 'kysely';
import type { Dialect } from './database.js';
import * as m001 from './migrations/001_core.js';
import * as m010 from './migrations/010_accounts.js';
import * as m020 from './migrations/020_rate_limits.js';
import * as m030 from './migrations/030_commerce.js';
import * as m031 from './migrations/031_notify.js';
import * as m040 from './migrations/040_responses.js';
import * as m045 from './migrations/045_history.js';
import * as m046 from './migrations/046_rankings.js';
import * as m060 from './migrations/060_fleet.js';
import * as m061 from './migrations/061_drop_job_leases.js';
import * as m062 from './migrations/062_lean_holds.js';
import * as m063 from './migrations/063_pg_billing_batch.js';
import * as m064 from './migrations/064_pg_billing_fast.js';
import * as m065 from './migrations/065_pg_billing_rows_once.js';
import * as m066 from './migrations/066_lean_write_indexes.js';

/**
 * One set of migrations for SQLite and PostgreSQL, applied in name order at start.
 * A feature that owns tables adds a file under migrations/ and one line here.
 */
type Step = { up: (db: Kysely<any>, dialect: Dialect) => Promise<void> };
const steps: Record<string, Step> = {
  '001_core': m001,
  '010_accounts': m010,
  '020_rate_limits': m020,
  '030_commerce': m030,
  '031_notify': m031,
  '040_responses': m040,
  '045_history': m045,
  '046_rankings': m046,
  '060_fleet': m060,
  '061_drop_job_leases': m061,
  '062_lean_holds': m062,
  '063_pg_billing_batch': m063,
  '064_pg_billing_fast': m064,
  '065_pg_billing_rows_once': m065,
  '066_lean_write_indexes': m066,
};

/** Apply every migration (or, with `upTo`, those up to and including that one: tests of a migration). */
export async function migrateToLatest(db: Kysely<any>, dialect: Dialect, upTo?: string): Promise<void> {
  const provider: MigrationProvider = {
    async getMigrations() {
      const out: Record<string, Migration> = {};
      for (const [name, step] of Object.entries(steps)) out[name] = { up: (d) => step.up(d, dialect) };
      return out;
    },
  };
  const migrator = new Migrator({ db, provider });
  const { error, results } = await (upTo ? migrator.migrateTo(upTo) : migrator.migrateToLatest());
  if (error) {
    const failed = results?.find((r) => r.status === 'Error');
    throw new Error(`migration ${failed?.migrationName ?? ''} failed: ${(error as Error).message ?? error}`);
  }
}
