import type { FastifyBaseLogger } from 'fastify';
import { countTokens } from '../inference/estimate.js';
import { badRequest, notFound } from '../lib/errors.js';
import { newId } from '../lib/ids.js';
import type { HistoryStore, MessageRow, NewMessage, SessionRow } from './store.js';

export const MAX_TITLE = 200;
const PER_MESSAGE_TOKENS = 4;
const DEFAULT_TITLE = 'New chat';
/** At most this many of the newest stored messages are considered for injection. */
export const MAX_INJECTED_MESSAGES = 1000;

/** What the history needs to know about a model: its context window and output budget. */
export type ModelLimits = (model: string) => { contextLength: number | null; maxOutputTokens: number | null };

/** A chat turn with history: the messages to send, and how to persist the turn once the reply is complete. */
export interface HistoryTurn {
  messages: unknown[];
  /** History messages actually injected (after trimming). */
  injected: number;
  /** Save the new turn and the assistant's reply, and bump the session. Never throws. */
  save(assistantText: string): Promise<void>;
}

export const sessionNotFound = () => notFound('Chat session not found', 'session_not_found', 'session_id');

/** Text of a message content (string, or text parts joined) for storage and search. */
export function contentText(content: unknown): string {
  if (typeof content === 'string') return content;
  if (Array.isArray(content)) {
    return content
      .map((p) => (typeof p === 'string' ? p : typeof p?.text === 'string' ? p.text : ''))
      .filter(Boolean)
      .join('\n');
  }
  return content === null || content === undefined ? '' : JSON.stringify(content);
}

/** Chat sessions, their messages, and history injection into inference requests. Owner-only throughout. */
export class HistoryService {
  constructor(
    private readonly store: HistoryStore,
    private readonly limits: ModelLimits,
    private readonly log: FastifyBaseLogger,
    private readonly now: () => number = Date.now,
  ) {}

  /** Account deletion removes the user's chat history (personal data). */
  deleteAllOf(userId: string): Promise<void> {
    return this.store.deleteAllOf(userId);
  }

  async create(userId: string, title: string | null | undefined, model: string | null | undefined) {
    const t = this.now();
    const row: SessionRow = {
      id: newId('chat'),
      user_id: userId,
      title: title?.trim() || DEFAULT_TITLE,
      model: model ?? null,
      message_count: 0,
      created_at: t,
      updated_at: t,
    };
    await this.store.create(row);
    return row;
  }

  async require(userId: string, id: string): Promise<SessionRow> {
    const s = await this.store.get(userId, id);
    if (!s) throw sessionNotFound();
    return s;
  }

  list(userId: string, limit: number, offset: number) {
    return this.store.list(userId, limit, offset);
  }

  async withMessages(userId: string, id: string) {
    const s = await this.require(userId, id);
    return { session: s, messages: await this.store.messages(userId, id) };
  }

  async rename(userId: string, id: string, title: string): Promise<SessionRow> {
    const t = title.trim();
    if (!t) throw badRequest('title must not be empty', 'title');
    if (!(await this.store.rename(userId, id, t.slice(0, MAX_TITLE), this.now()))) throw sessionNotFound();
    return this.require(userId, id);
  }

  async delete(userId: string, id: string): Promise<void> {
    if (!(await this.store.delete(userId, id))) throw sessionNotFound();
  }

  async addMessage(userId: string, id: string, role: string, content: unknown, model: string | null) {
    const rows = await this.store.append(userId, id, [await toNew(role, content, model)], this.now(), null);
    if (!rows) throw sessionNotFound();
    return rows[0]!;
  }

  async search(userId: string, query: string, limit: number) {
    const q = query.trim();
    if (!q) throw badRequest('query must not be empty', 'query');
    const sessions = await this.store.search(userId, q, limit);
    const hits = await this.store.matchingMessages(
      userId,
      sessions.map((s) => s.id),
      q,
      3,
    );
    return sessions.map((s) => ({ session: s, matches: hits.filter((h) => h.session_id === s.id) }));
  }

  async stats(userId: string) {
    const { sessions, byRole } = await this.store.stats(userId);
    const messagesByRole: Record<string, number> = {};
    let messages = 0;
    let tokens = 0;
    for (const r of byRole) {
      messagesByRole[r.role] = Number(r.n);
      messages += Number(r.n);
      tokens += Number(r.tokens ?? 0);
    }
    return {
      total_sessions: Number(sessions.sessions),
      total_messages: messages,
      messages_by_role: messagesByRole,
      total_tokens: tokens,
      first_session_at: sessions.first === null ? null : Number(sessions.first),
      last_activity_at: sessions.last === null ? null : Number(sessions.last),
    };
  }

  /**
   * Inject a session's history into a chat request: the request's system messages first, then the
   * stored history, then the new turn; history is trimmed oldest first so the prompt fits the
   * model's context window minus the output budget. 404 when the session is not the caller's.
   */
  async prepare(
    userId: string,
    sessionId: string,
    model: string,
    messages: readonly unknown[],
    maxOutputTokens: number | null,
  ): Promise<HistoryTurn> {
    await this.require(userId, sessionId);
    const system: unknown[] = [];
    const turn: unknown[] = [];
    for (const m of messages) {
      const role = (m as { role?: unknown })?.role;
      if (role === 'system' || role === 'developer') system.push(m);
      else turn.push(m);
    }
    const rows = await this.store.messages(userId, sessionId, MAX_INJECTED_MESSAGES);
    // Stored system messages join the request's at the front; tool results cannot be replayed
    // without the tool call they answer, so they stay out.
    for (const r of rows) if (r.role === 'system') system.push(toChatMessage(r));
    const stored = rows.filter((r) => r.role === 'user' || r.role === 'assistant');
    let history = stored.map(toChatMessage);
    const { contextLength, maxOutputTokens: modelMax } = this.limits(model);
    if (contextLength !== null) {
      const reserve = maxOutputTokens ?? Math.min(modelMax ?? 4096, Math.floor(contextLength / 4));
      let used = 0;
      for (const m of [...system, ...turn]) used += await messageTokens(m);
      const historyTokens = stored.map((r) => PER_MESSAGE_TOKENS + Number(r.tokens));
      let total = historyTokens.reduce((a, b) => a + b, 0);
      let drop = 0;
      while (drop < history.length && used + total + reserve > contextLength) {
        total -= historyTokens[drop]!;
        drop++;
      }
      // Never start the kept history with an orphaned assistant reply.
      while (drop > 0 && drop < history.length && history[drop]!.role !== 'user') drop++;
      history = history.slice(drop);
    }
    const out = [...system, ...history, ...turn];
    return {
      messages: out,
      injected: history.length,
      save: async (assistantText: string) => {
        try {
          const rows: NewMessage[] = [];
          // The new user turn (tool traffic and replayed assistant messages are not history).
          for (const m of turn) {
            const msg = m as { role: string; content?: unknown };
            if (msg.role === 'user') rows.push(await toNew(msg.role, msg.content ?? '', null));
          }
          rows.push(await toNew('assistant', assistantText, model));
          await this.store.append(userId, sessionId, rows, this.now(), model);
        } catch (err) {
          // The reply was paid for and delivered; a history write failure must not fail the request.
          this.log.error({ err, sessionId }, 'chat history save failed');
        }
      },
    };
  }
}

async function toNew(role: string, content: unknown, model: string | null): Promise<NewMessage> {
  const text = contentText(content);
  return {
    role,
    content: text,
    parts: Array.isArray(content) ? JSON.stringify(content) : null,
    model,
    tokens: await countTokens(text),
  };
}

function toChatMessage(r: MessageRow): { role: string; content: unknown } {
  if (r.parts !== null) {
    try {
      return { role: r.role, content: JSON.parse(r.parts) };
    } catch {
      // fall through to the text
    }
  }
  return { role: r.role, content: r.content };
}

async function messageTokens(m: unknown): Promise<number> {
  return PER_MESSAGE_TOKENS + (await countTokens(contentText((m as { content?: unknown })?.content)));
}
