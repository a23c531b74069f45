import type { Kysely } from 'kysely';
import type { Database } from '../../db/schema.js';

export interface StoredResponse {
  id: string;
  userId: string;
  model: string;
  status: string;
  /** The whole conversation up to this response's input (previous chain expanded). */
  inputItems: unknown[];
  response: Record<string, unknown>;
  createdAt: number;
}

/** Stored responses, readable only by their owner. */
export class ResponsesStore {
  constructor(private readonly db: Kysely<Database>) {}

  async save(r: StoredResponse): Promise<void> {
    await this.db
      .insertInto('stored_responses')
      .values({
        id: r.id,
        user_id: r.userId,
        model: r.model,
        status: r.status,
        input_items: JSON.stringify(r.inputItems),
        response: JSON.stringify(r.response),
        created_at: r.createdAt,
      })
      .onConflict((oc) => oc.column('id').doNothing())
      .execute();
  }

  /** The response if it exists AND belongs to `userId`; another user's id reads as absent. */
  async get(id: string, userId: string): Promise<StoredResponse | null> {
    const row = await this.db
      .selectFrom('stored_responses')
      .selectAll()
      .where('id', '=', id)
      .where('user_id', '=', userId)
      .executeTakeFirst();
    if (!row) return null;
    return {
      id: row.id,
      userId: row.user_id,
      model: row.model,
      status: row.status,
      inputItems: JSON.parse(row.input_items),
      response: JSON.parse(row.response),
      createdAt: Number(row.created_at),
    };
  }

  /** Delete the owner's response; false when there is none (or it is someone else's). */
  async delete(id: string, userId: string): Promise<boolean> {
    const r = await this.db
      .deleteFrom('stored_responses')
      .where('id', '=', id)
      .where('user_id', '=', userId)
      .executeTakeFirst();
    return Number(r.numDeletedRows) > 0;
  }
}
