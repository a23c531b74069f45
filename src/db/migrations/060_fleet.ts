import type { Kysely } from 'kysely';
import type { Dialect } from '../database.js';

/** Leases that make one instance of a fleet run each scheduled job (when Redis is not configured). */
export async function up(db: Kysely<any>, _dialect: Dialect): Promise<void> {
  await db.schema
    .createTable('fleet_leases')
    .addColumn('name', 'text', (c) => c.primaryKey())
    .addColumn('owner', 'text', (c) => c.notNull())
    .addColumn('expires_at', 'bigint', (c) => c.notNull())
    .execute();
}
