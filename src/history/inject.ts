import type { FastifyRequest } from 'fastify';
import { badRequest } from '../lib/errors.js';
import type { HistoryService } from './service.js';

/** `session_id` from the query string (the earlier gateway's way) or the body; null when absent. */
export function sessionIdOf(request: FastifyRequest): string | null {
  const q = (request.query as Record<string, unknown> | undefined)?.session_id;
  const b = (request.body as Record<string, unknown> | undefined)?.session_id;
  const v = q ?? b;
  if (v === undefined || v === null || v === '') return null;
  if (typeof v !== 'string' || v.length > 100)
    throw badRequest('session_id must be a chat session id', 'session_id');
  return v;
}

/**
 * The shared helper for inference routes that speak chat messages (chat completions, responses):
 * when the request names a session, replace `messages` with system + history + new turn (trimmed
 * to the model's context) and return the callback that saves the turn and reply. Throws 404 for a
 * session that is not the caller's — before anything is held or sent.
 */
export async function injectHistory(
  history: HistoryService | undefined,
  request: FastifyRequest,
  userId: string,
  model: string,
  messages: readonly unknown[],
  maxOutputTokens: number | null,
): Promise<{ messages: unknown[]; onComplete: (assistantText: string) => Promise<void> } | null> {
  const sessionId = sessionIdOf(request);
  if (sessionId === null || !history) return null;
  const turn = await history.prepare(userId, sessionId, model, messages, maxOutputTokens);
  return { messages: turn.messages, onComplete: turn.save };
}
