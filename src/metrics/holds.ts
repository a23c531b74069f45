import { type Kysely, sql } from 'kysely';
import type { Database } from '../db/schema.js';

/** Holds not yet settled or released, across the fleet (one indexed aggregate, only at scrape time). */
export async function holdsInFlight(db: Kysely<Database>): Promise<{ count: number; micros: number }> {
  const r = await db
    .selectFrom('holds')
    .select([sql<number>`count(*)`.as('n'), sql<number>`coalesce(sum(amount_micros), 0)`.as('micros')])
    .executeTakeFirstOrThrow();
  return { count: Number(r.n), micros: Number(r.micros) };
}
