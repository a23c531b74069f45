import type { Kysely } from 'kysely';
import { hotStatement } from '../../billing/hot-statement.js';
import type { SqliteGroupCommit } from '../../billing/sqlite-group-commit.js';
import type { Db } from '../../db/database.js';
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

type Insert = (r: StoredResponse) => Promise<void>;

/**
 * The INSERT of a stored response, prepared once (billing/hot-statement.ts). On SQLite it goes to the
 * billing group commit, answered after its COMMIT, so a response saved as its request settles shares
 * the settle's COMMIT.
 */
export function storedResponseInsert(db: Db, commits: SqliteGroupCommit | null): Insert {
  const insert = hotStatement(
    db,
    commits,
    'gwz_response_insert',
    (p) => `INSERT INTO stored_responses (id, user_id, model, status, input_items, response, created_at)
      VALUES (${p(1)}, ${p(2)}, ${p(3)}, ${p(4)}, ${p(5)}, ${p(6)}, ${p(7)}) ON CONFLICT (id) DO NOTHING`,
    true,
  );
  return async (r) => {
    await insert(
      r.id,
      r.userId,
      r.model,
      r.status,
      JSON.stringify(r.inputItems),
      JSON.stringify(r.response),
      r.createdAt,
    );
  };
}

/** Stored responses, readable only by their owner. */
export class ResponsesStore {
  constructor(
    private readonly db: Kysely<Database>,
    /** The INSERT (`storedResponseInsert`). */
    private readonly insert: Insert,
  ) {}

  save(r: StoredResponse): Promise<void> {
    return this.insert(r);
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
