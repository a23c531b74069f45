import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { requireUser } from '../http/auth.js';
import { type HistoryService, MAX_TITLE } from './service.js';
import type { MessageRow, SessionRow } from './store.js';

const sessionView = (s: SessionRow) => ({
  id: s.id,
  object: 'chat.session',
  title: s.title,
  model: s.model,
  message_count: Number(s.message_count),
  created_at: Number(s.created_at),
  updated_at: Number(s.updated_at),
});

const messageView = (m: MessageRow) => ({
  id: Number(m.id),
  role: m.role,
  content: m.parts !== null ? safeParse(m.parts, m.content) : m.content,
  model: m.model,
  tokens: Number(m.tokens),
  created_at: Number(m.created_at),
});

function safeParse(json: string, fallback: string): unknown {
  try {
    return JSON.parse(json);
  } catch {
    return fallback;
  }
}

const Id = Type.Object({ id: Type.String({ minLength: 1, maxLength: 100 }) });
const Title = Type.String({ minLength: 1, maxLength: MAX_TITLE });
const Content = Type.Union([Type.String(), Type.Array(Type.Any(), { minItems: 1 })]);

/** /chat/sessions… and the same under /v1/chat/sessions…; every route is owner-only (others' sessions are 404). */
export function historyRoutes(app: FastifyInstance, history: HistoryService): void {
  const cfg = { auth: 'user' as const };
  for (const prefix of ['', '/v1']) {
    const tags = ['chat history'];
    app.post(
      `${prefix}/chat/sessions`,
      {
        schema: {
          tags,
          summary: 'Create a chat session',
          body: Type.Object(
            {
              title: Type.Optional(Type.Union([Title, Type.Null()])),
              model: Type.Optional(Type.Union([Type.String({ minLength: 1, maxLength: 300 }), Type.Null()])),
            },
            { additionalProperties: false },
          ),
        },
        config: cfg,
        // The body is optional: only a body that is present must be valid.
        attachValidation: true,
      },
      async (request) => {
        if (request.validationError && request.body !== undefined && request.body !== null)
          throw request.validationError;
        const p = requireUser(request);
        const b = (request.body ?? {}) as { title?: string | null; model?: string | null };
        return { success: true, data: sessionView(await history.create(p.userId, b.title, b.model)) };
      },
    );

    app.get(
      `${prefix}/chat/sessions`,
      {
        schema: {
          tags,
          summary: 'List chat sessions, newest activity first',
          querystring: Type.Object({
            limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 200, default: 50 })),
            offset: Type.Optional(Type.Integer({ minimum: 0, default: 0 })),
          }),
        },
        config: cfg,
      },
      async (request) => {
        const p = requireUser(request);
        const q = request.query as { limit: number; offset: number };
        const { rows, total } = await history.list(p.userId, q.limit, q.offset);
        return {
          success: true,
          data: rows.map(sessionView),
          total,
          limit: q.limit,
          offset: q.offset,
          has_more: q.offset + rows.length < total,
        };
      },
    );

    app.get(
      `${prefix}/chat/sessions/:id`,
      { schema: { tags, summary: 'A chat session with its messages', params: Id }, config: cfg },
      async (request) => {
        const p = requireUser(request);
        const { id } = request.params as { id: string };
        const { session, messages } = await history.withMessages(p.userId, id);
        return { success: true, data: { ...sessionView(session), messages: messages.map(messageView) } };
      },
    );

    const rename = {
      schema: {
        tags,
        summary: 'Rename a chat session',
        params: Id,
        body: Type.Object({ title: Title }, { additionalProperties: false }),
      },
      config: cfg,
    };
    const renameHandler = async (request: any) => {
      const p = requireUser(request);
      const { id } = request.params as { id: string };
      const { title } = request.body as { title: string };
      return { success: true, data: sessionView(await history.rename(p.userId, id, title)) };
    };
    app.patch(`${prefix}/chat/sessions/:id`, rename, renameHandler);
    app.put(`${prefix}/chat/sessions/:id`, rename, renameHandler);

    app.delete(
      `${prefix}/chat/sessions/:id`,
      { schema: { tags, summary: 'Delete a chat session and its messages', params: Id }, config: cfg },
      async (request) => {
        const p = requireUser(request);
        const { id } = request.params as { id: string };
        await history.delete(p.userId, id);
        return { success: true, deleted: true, id };
      },
    );

    app.post(
      `${prefix}/chat/sessions/:id/messages`,
      {
        schema: {
          tags,
          summary: 'Add a message to a chat session',
          params: Id,
          body: Type.Object(
            {
              role: Type.Union([
                Type.Literal('user'),
                Type.Literal('assistant'),
                Type.Literal('system'),
                Type.Literal('tool'),
              ]),
              content: Content,
              model: Type.Optional(Type.Union([Type.String({ minLength: 1, maxLength: 300 }), Type.Null()])),
            },
            { additionalProperties: false },
          ),
        },
        config: cfg,
      },
      async (request) => {
        const p = requireUser(request);
        const { id } = request.params as { id: string };
        const b = request.body as { role: string; content: unknown; model?: string | null };
        const m = await history.addMessage(p.userId, id, b.role, b.content, b.model ?? null);
        return { success: true, data: messageView(m) };
      },
    );

    app.post(
      `${prefix}/chat/search`,
      {
        schema: {
          tags,
          summary: 'Search your chat sessions (titles and messages)',
          body: Type.Object(
            {
              query: Type.String({ minLength: 1, maxLength: 500 }),
              limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, default: 20 })),
            },
            { additionalProperties: false },
          ),
        },
        config: cfg,
      },
      async (request) => {
        const p = requireUser(request);
        const b = request.body as { query: string; limit: number };
        const results = await history.search(p.userId, b.query, b.limit);
        return {
          success: true,
          query: b.query,
          data: results.map((r) => ({
            ...sessionView(r.session),
            matches: r.matches.map((m) => ({
              message_id: Number(m.id),
              role: m.role,
              content: m.content.length > 300 ? `${m.content.slice(0, 300)}…` : m.content,
              created_at: Number(m.created_at),
            })),
          })),
        };
      },
    );

    app.get(
      `${prefix}/chat/stats`,
      { schema: { tags, summary: 'Your chat history statistics' }, config: cfg },
      async (request) => {
        const p = requireUser(request);
        return { success: true, data: await history.stats(p.userId) };
      },
    );
  }
}
