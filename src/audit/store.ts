import type { Insertable, Kysely, Selectable } from 'kysely';
import type { AuditLogsTable, Database } from '../db/schema.js';

export type AuditRow = Selectable<AuditLogsTable>;
export type NewAuditRow = Insertable<AuditLogsTable>;

export interface AuditQuery {
  userId?: string;
  action?: string;
  resourceType?: string;
  from?: number;
  to?: number;
  limit: number;
  offset: number;
}

/** SQL of the append-only audit log (no update, no delete). */
export class AuditStore {
  constructor(private readonly db: Kysely<Database>) {}

  async insertMany(rows: NewAuditRow[]): Promise<void> {
    if (rows.length) await this.db.insertInto('audit_logs').values(rows).execute();
  }

  async query(q: AuditQuery): Promise<{ rows: AuditRow[]; total: number }> {
    let base = this.db.selectFrom('audit_logs');
    if (q.userId) base = base.where('user_id', '=', q.userId);
    if (q.action) base = base.where('action', '=', q.action);
    if (q.resourceType) base = base.where('resource_type', '=', q.resourceType);
    if (q.from !== undefined) base = base.where('at', '>=', q.from);
    if (q.to !== undefined) base = base.where('at', '<=', q.to);
    const [rows, count] = await Promise.all([
      base.selectAll().orderBy('at', 'desc').orderBy('id', 'desc').limit(q.limit).offset(q.offset).execute(),
      base.select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow(),
    ]);
    return { rows, total: Number(count.n) };
  }
}
