import { type Kysely, sql } from 'kysely';
import type { ChatMessagesTable, ChatSessionsTable, Database } from '../db/schema.js';

export type SessionRow = ChatSessionsTable;
export type MessageRow = Omit<ChatMessagesTable, 'id'> & { id: number };
export type NewMessage = Omit<ChatMessagesTable, 'id' | 'session_id' | 'user_id' | 'created_at'>;

/** SQL of chat history. Every query is scoped by user_id: another user's session does not exist. */
export class HistoryStore {
  constructor(private readonly db: Kysely<Database>) {}

  async create(row: SessionRow): Promise<void> {
    await this.db.insertInto('chat_sessions').values(row).execute();
  }

  async get(userId: string, id: string): Promise<SessionRow | undefined> {
    return this.db
      .selectFrom('chat_sessions')
      .selectAll()
      .where('id', '=', id)
      .where('user_id', '=', userId)
      .executeTakeFirst();
  }

  async list(userId: string, limit: number, offset: number): Promise<{ rows: SessionRow[]; total: number }> {
    const [rows, count] = await Promise.all([
      this.db
        .selectFrom('chat_sessions')
        .selectAll()
        .where('user_id', '=', userId)
        .orderBy('updated_at', 'desc')
        .orderBy('id', 'desc')
        .limit(limit)
        .offset(offset)
        .execute(),
      this.db
        .selectFrom('chat_sessions')
        .select((e) => e.fn.countAll<number>().as('n'))
        .where('user_id', '=', userId)
        .executeTakeFirstOrThrow(),
    ]);
    return { rows, total: Number(count.n) };
  }

  async rename(userId: string, id: string, title: string, now: number): Promise<boolean> {
    const r = await this.db
      .updateTable('chat_sessions')
      .set({ title, updated_at: now })
      .where('id', '=', id)
      .where('user_id', '=', userId)
      .executeTakeFirst();
    return Number(r.numUpdatedRows) === 1;
  }

  async delete(userId: string, id: string): Promise<boolean> {
    return this.db.transaction().execute(async (trx) => {
      const r = await trx
        .deleteFrom('chat_sessions')
        .where('id', '=', id)
        .where('user_id', '=', userId)
        .executeTakeFirst();
      if (Number(r.numDeletedRows) !== 1) return false;
      await trx.deleteFrom('chat_messages').where('session_id', '=', id).execute();
      return true;
    });
  }

  /** Remove every session and message of a user (account deletion). */
  async deleteAllOf(userId: string): Promise<void> {
    await this.db.transaction().execute(async (trx) => {
      const ids = (
        await trx.selectFrom('chat_sessions').select('id').where('user_id', '=', userId).execute()
      ).map((r) => r.id);
      for (let i = 0; i < ids.length; i += 500) {
        await trx
          .deleteFrom('chat_messages')
          .where('session_id', 'in', ids.slice(i, i + 500))
          .execute();
      }
      await trx.deleteFrom('chat_sessions').where('user_id', '=', userId).execute();
    });
  }

  /** Messages of a session, oldest first (`latest` keeps only the newest N). */
  async messages(userId: string, sessionId: string, latest?: number): Promise<MessageRow[]> {
    let q = this.db
      .selectFrom('chat_messages')
      .selectAll()
      .where('session_id', '=', sessionId)
      .where('user_id', '=', userId)
      .orderBy('id', 'desc');
    if (latest !== undefined) q = q.limit(latest);
    const rows = (await q.execute()) as MessageRow[];
    return rows.reverse();
  }

  /** Append messages and bump the session's activity, atomically; false when the session is gone. */
  async append(
    userId: string,
    sessionId: string,
    msgs: NewMessage[],
    now: number,
    model: string | null,
  ): Promise<MessageRow[] | null> {
    return this.db.transaction().execute(async (trx) => {
      const r = await trx
        .updateTable('chat_sessions')
        .set({
          message_count: sql`message_count + ${msgs.length}`,
          updated_at: now,
          ...(model ? { model } : {}),
        })
        .where('id', '=', sessionId)
        .where('user_id', '=', userId)
        .executeTakeFirst();
      if (Number(r.numUpdatedRows) !== 1) return null;
      const out: MessageRow[] = [];
      for (const m of msgs) {
        const row = { ...m, session_id: sessionId, user_id: userId, created_at: now };
        const ins = await trx
          .insertInto('chat_messages')
          .values(row)
          .returning('id')
          .executeTakeFirstOrThrow();
        out.push({ ...row, id: Number(ins.id) });
      }
      return out;
    });
  }

  /** Sessions whose title or any message contains `needle` (case-insensitive), newest activity first. */
  async search(userId: string, needle: string, limit: number): Promise<SessionRow[]> {
    const pattern = `%${needle.toLowerCase().replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
    const like = (col: string) => sql<boolean>`lower(${sql.ref(col)}) like ${pattern} escape '\\'`;
    return this.db
      .selectFrom('chat_sessions as s')
      .selectAll('s')
      .where('s.user_id', '=', userId)
      .where((eb) =>
        eb.or([
          like('s.title'),
          eb.exists(
            eb
              .selectFrom('chat_messages as m')
              .select('m.id')
              .whereRef('m.session_id', '=', 's.id')
              .where('m.user_id', '=', userId)
              .where(like('m.content')),
          ),
        ]),
      )
      .orderBy('s.updated_at', 'desc')
      .limit(limit)
      .execute();
  }

  /** Matching message snippets for search results. */
  async matchingMessages(userId: string, sessionIds: string[], needle: string, perSession: number) {
    if (sessionIds.length === 0) return [];
    const pattern = `%${needle.toLowerCase().replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
    const rows = await this.db
      .selectFrom('chat_messages')
      .select(['id', 'session_id', 'role', 'content', 'created_at'])
      .where('user_id', '=', userId)
      .where('session_id', 'in', sessionIds)
      .where(sql<boolean>`lower(content) like ${pattern} escape '\\'`)
      .orderBy('id', 'asc')
      .execute();
    const seen = new Map<string, number>();
    return rows.filter((r) => {
      const n = seen.get(r.session_id) ?? 0;
      seen.set(r.session_id, n + 1);
      return n < perSession;
    });
  }

  async stats(userId: string) {
    const [s, m] = await Promise.all([
      this.db
        .selectFrom('chat_sessions')
        .select((e) => [
          e.fn.countAll<number>().as('sessions'),
          e.fn.min('created_at').as('first'),
          e.fn.max('updated_at').as('last'),
        ])
        .where('user_id', '=', userId)
        .executeTakeFirstOrThrow(),
      this.db
        .selectFrom('chat_messages')
        .select((e) => ['role', e.fn.countAll<number>().as('n'), e.fn.sum<number>('tokens').as('tokens')])
        .where('user_id', '=', userId)
        .groupBy('role')
        .execute(),
    ]);
    return { sessions: s, byRole: m };
  }
}
