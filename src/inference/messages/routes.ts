import type { FastifyInstance } from 'fastify';
import { requireUser } from '../../http/auth.js';
import { anthropicToChatRequest } from '../../providers/anthropic/request.js';
import { parseProviderPreference } from '../../routing/router.js';
import { inferenceCall } from '../call.js';
import { countChatUsage } from '../chat/count.js';
import { messagesUpperBound } from '../estimate.js';
import type { Pipeline } from '../pipeline.js';
import { messagesAdapter } from './adapter.js';
import { CountTokensBody, MessagesBody } from './schema.js';

/** `POST /v1/messages`: Anthropic's Messages API (x-api-key or Bearer), errors in Anthropic's shape. */
export function messagesRoutes(app: FastifyInstance, pipeline: Pipeline): void {
  app.post(
    '/v1/messages',
    {
      schema: {
        tags: ['inference'],
        summary: 'Anthropic Messages API (x-api-key or Bearer; stream with Anthropic events)',
        body: MessagesBody,
      },
      config: { auth: 'user', inference: true, errorFormat: 'anthropic' },
    },
    async (request, reply) => {
      const principal = requireUser(request);
      const body = request.body as Record<string, any>;
      const beta = request.headers['anthropic-beta'];
      const call = inferenceCall(request, principal, {
        endpoint: 'messages',
        model: body.model as string,
        providerPref: parseProviderPreference(body.provider),
        stream: body.stream === true,
        promptTokensBound: messagesUpperBound(body.messages, { system: body.system, tools: body.tools }),
        maxOutputTokens: body.max_tokens as number,
        choices: 1,
        units: 0,
      });
      await pipeline.run(call, messagesAdapter(body, typeof beta === 'string' ? beta : null), reply);
      return reply;
    },
  );

  // Claude Code asks for token counts before sending; answered locally (no provider call, no charge).
  app.post(
    '/v1/messages/count_tokens',
    {
      schema: {
        tags: ['inference'],
        summary: 'Count the input tokens of a Messages request (local estimate; free)',
        body: CountTokensBody,
      },
      config: { auth: 'user', errorFormat: 'anthropic' },
    },
    async (request) => {
      requireUser(request);
      const body = request.body as Record<string, any>;
      const chat = anthropicToChatRequest(body, body.model, 1);
      const u = await countChatUsage(chat.messages, '', body.tools);
      return { input_tokens: u.promptTokens };
    },
  );
}
