import type { Kysely } from 'kysely';
import type { Dialect } from '../database.js';

/** Commerce's scheduled jobs run on the fleet's leases (`fleet_leases`): its own lease table is unused. */
export async function up(db: Kysely<any>, _dialect: Dialect): Promise<void> {
  await db.schema.dropTable('job_leases').ifExists().execute();
}
