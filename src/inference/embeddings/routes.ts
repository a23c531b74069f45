import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { requireUser } from '../../http/auth.js';
import { badRequest } from '../../lib/errors.js';
import { parseProviderPreference } from '../../routing/router.js';
import { inferenceCall } from '../call.js';
import type { Pipeline } from '../pipeline.js';
import { embeddingInputBound, embeddingsAdapter } from './adapter.js';

export const MAX_EMBEDDING_INPUTS = 2048;

const TokenIds = Type.Array(Type.Integer({ minimum: 0 }), { minItems: 1 });

/** OpenAI's embeddings request: input is a string, strings, token ids, or lists of token ids. */
export const EmbeddingsBody = Type.Object(
  {
    model: Type.String({ minLength: 1, maxLength: 300 }),
    input: Type.Union([
      Type.String({ minLength: 1 }),
      Type.Array(Type.String({ minLength: 1 }), { minItems: 1, maxItems: MAX_EMBEDDING_INPUTS }),
      TokenIds,
      Type.Array(TokenIds, { minItems: 1, maxItems: MAX_EMBEDDING_INPUTS }),
    ]),
    encoding_format: Type.Optional(Type.Union([Type.Literal('float'), Type.Literal('base64')])),
    dimensions: Type.Optional(Type.Integer({ minimum: 1 })),
    user: Type.Optional(Type.String()),
    provider: Type.Optional(Type.Union([Type.String(), Type.Object({}, { additionalProperties: true })])),
  },
  { additionalProperties: true },
);

export function embeddingsRoutes(app: FastifyInstance, pipeline: Pipeline): void {
  app.post(
    '/v1/embeddings',
    {
      schema: {
        tags: ['inference'],
        summary: 'Embeddings (OpenAI-compatible), billed per input token',
        body: EmbeddingsBody,
      },
      config: { auth: 'user', inference: true },
      // A union's first failing branch makes a poor message; name the field instead.
      attachValidation: true,
    },
    async (request, reply) => {
      if (request.validationError) throw embeddingsInputError(request.validationError);
      const principal = requireUser(request);
      const body = request.body as Record<string, any>;
      const call = inferenceCall(request, principal, {
        endpoint: 'embeddings',
        model: body.model as string,
        providerPref: parseProviderPreference(body.provider),
        stream: false,
        promptTokensBound: embeddingInputBound(body.input),
        maxOutputTokens: 0,
        choices: 1,
        units: 0,
      });
      await pipeline.run(call, embeddingsAdapter(body), reply);
      return reply;
    },
  );
}

function embeddingsInputError(err: Error & { validation?: Array<{ instancePath?: string }> }): Error {
  if (!String(err.validation?.[0]?.instancePath ?? '').startsWith('/input')) return err;
  return badRequest(
    `Invalid 'input': expected a non-empty string, a non-empty array of non-empty strings (at most ${MAX_EMBEDDING_INPUTS}), or token ids`,
    'input',
    'invalid_value',
  );
}
