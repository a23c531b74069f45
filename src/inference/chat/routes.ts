import type { FastifyInstance } from 'fastify';
import { injectHistory } from '../../history/inject.js';
import type { HistoryService } from '../../history/service.js';
import { requireUser } from '../../http/auth.js';
import { parseProviderPreference } from '../../routing/router.js';
import { inferenceCall } from '../call.js';
import { messagesUpperBound } from '../estimate.js';
import type { Pipeline } from '../pipeline.js';
import { chatAdapter } from './adapter.js';
import { ChatCompletionBody } from './schema.js';

export function chatRoutes(app: FastifyInstance, pipeline: Pipeline, history?: HistoryService): void {
  app.post(
    '/v1/chat/completions',
    {
      schema: {
        tags: ['inference'],
        summary: 'Chat completions (OpenAI-compatible; stream with SSE)',
        body: ChatCompletionBody,
      },
      config: { auth: 'user', inference: true },
    },
    async (request, reply) => {
      const principal = requireUser(request);
      const body = request.body as Record<string, any>;
      // session_id: stored history goes in before the hold is sized; the turn is saved once the reply completes.
      const withHistory = await injectHistory(
        history,
        request,
        principal.userId,
        body.model as string,
        body.messages,
        (body.max_completion_tokens ?? body.max_tokens ?? null) as number | null,
      );
      if (withHistory) body.messages = withHistory.messages;
      const call = inferenceCall(request, principal, {
        endpoint: 'chat.completions',
        model: body.model as string,
        providerPref: parseProviderPreference(body.provider),
        fallbackModels: (body.models as string[] | undefined) ?? null,
        stream: body.stream === true,
        promptTokensBound: messagesUpperBound(body.messages, body.tools),
        maxOutputTokens: (body.max_completion_tokens ?? body.max_tokens ?? null) as number | null,
        choices: (body.n as number | null) ?? 1,
        units: 0,
      });
      await pipeline.run(call, chatAdapter(body, withHistory?.onComplete), reply);
      return reply;
    },
  );
}
