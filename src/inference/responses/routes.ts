import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { injectHistory } from '../../history/inject.js';
import type { HistoryService } from '../../history/service.js';
import { requireUser } from '../../http/auth.js';
import { notFound } from '../../lib/errors.js';
import { parseProviderPreference } from '../../routing/router.js';
import { inferenceCall } from '../call.js';
import { messagesUpperBound } from '../estimate.js';
import type { Pipeline } from '../pipeline.js';
import { responsesAdapter } from './adapter.js';
import { ResponsesBody } from './schema.js';
import type { ResponsesStore } from './store.js';
import { inputItemsOf, outputAsInputItems } from './translate.js';

type Obj = Record<string, any>;

/** Upper bound of an item list's prompt tokens: message content, or the whole item for calls and outputs. */
function itemsUpperBound(items: Obj[], extra: unknown): number {
  return messagesUpperBound(
    items.map((it) => (it && 'content' in it ? it : { content: JSON.stringify(it) })),
    extra,
  );
}

/** `POST /v1/responses`, `GET` and `DELETE /v1/responses/{id}` (owner only). */
export function responsesRoutes(
  app: FastifyInstance,
  pipeline: Pipeline,
  store: ResponsesStore,
  history?: HistoryService,
): void {
  app.post(
    '/v1/responses',
    {
      schema: {
        tags: ['inference'],
        summary: 'Responses API (OpenAI-compatible; stream with typed events)',
        body: ResponsesBody,
      },
      config: { auth: 'user', inference: true },
    },
    async (request, reply) => {
      const principal = requireUser(request);
      const body = request.body as Obj;
      let items = inputItemsOf(body.input);
      if (body.previous_response_id) {
        const prev = await store.get(body.previous_response_id, principal.userId);
        if (!prev)
          throw notFound(
            `Previous response with id '${body.previous_response_id}' not found.`,
            'previous_response_not_found',
            'previous_response_id',
          );
        items = [...(prev.inputItems as Obj[]), ...outputAsInputItems(prev.response.output), ...items];
      }
      // session_id: the session's stored turns come before this input (message items), trimmed to the context.
      const withHistory = await injectHistory(
        history,
        request,
        principal.userId,
        body.model as string,
        typeof body.instructions === 'string'
          ? [{ role: 'system', content: body.instructions }, ...items]
          : items,
        (body.max_output_tokens ?? null) as number | null,
      );
      if (withHistory) {
        items = (withHistory.messages as Obj[]).filter(
          (m) =>
            !(
              typeof body.instructions === 'string' &&
              m.role === 'system' &&
              m.content === body.instructions
            ),
        );
      }
      const call = inferenceCall(request, principal, {
        endpoint: 'responses',
        model: body.model as string,
        providerPref: parseProviderPreference(body.provider),
        stream: body.stream === true,
        promptTokensBound:
          itemsUpperBound(items, { tools: body.tools, text: body.text }) +
          (typeof body.instructions === 'string' ? Buffer.byteLength(body.instructions) + 8 : 0),
        maxOutputTokens: (body.max_output_tokens ?? null) as number | null,
        choices: 1,
        units: 0,
      });
      await pipeline.run(
        call,
        responsesAdapter(body, {
          items,
          userId: principal.userId,
          store,
          log: request.log,
          onComplete: withHistory?.onComplete,
        }),
        reply,
      );
      return reply;
    },
  );

  app.get(
    '/v1/responses/:id',
    {
      schema: {
        tags: ['inference'],
        summary: 'A stored response (owner only)',
        params: Type.Object({ id: Type.String({ minLength: 1 }) }),
      },
      config: { auth: 'user' },
    },
    async (request) => {
      const principal = requireUser(request);
      const { id } = request.params as { id: string };
      const r = await store.get(id, principal.userId);
      if (!r) throw notFound(`Response with id '${id}' not found.`, 'response_not_found', 'id');
      return r.response;
    },
  );

  app.delete(
    '/v1/responses/:id',
    {
      schema: {
        tags: ['inference'],
        summary: 'Delete a stored response (owner only)',
        params: Type.Object({ id: Type.String({ minLength: 1 }) }),
      },
      config: { auth: 'user' },
    },
    async (request) => {
      const principal = requireUser(request);
      const { id } = request.params as { id: string };
      if (!(await store.delete(id, principal.userId)))
        throw notFound(`Response with id '${id}' not found.`, 'response_not_found', 'id');
      return { id, object: 'response', deleted: true };
    },
  );
}
