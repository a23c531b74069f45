import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { requireUser } from '../../http/auth.js';
import { parseProviderPreference } from '../../routing/router.js';
import { inferenceCall } from '../call.js';
import type { Pipeline } from '../pipeline.js';
import { type ImagesShape, imagesAdapter } from './adapter.js';
import type { ImagePrices } from './price.js';

export const MAX_IMAGES = 10;

/** OpenAI's image generation request; the fields the gateway reads are checked, others pass through. */
export const ImageGenerationBody = Type.Object(
  {
    prompt: Type.String({ minLength: 1, maxLength: 32_000 }),
    model: Type.String({ minLength: 1, maxLength: 300 }),
    n: Type.Optional(Type.Union([Type.Integer({ minimum: 1, maximum: MAX_IMAGES }), Type.Null()])),
    size: Type.Optional(Type.Union([Type.String({ pattern: '^(\\d{2,5}x\\d{2,5}|auto)$' }), Type.Null()])),
    quality: Type.Optional(Type.Union([Type.String({ minLength: 1, maxLength: 40 }), Type.Null()])),
    style: Type.Optional(Type.Union([Type.String({ minLength: 1, maxLength: 40 }), Type.Null()])),
    response_format: Type.Optional(Type.Union([Type.Literal('url'), Type.Literal('b64_json'), Type.Null()])),
    provider: Type.Optional(Type.Union([Type.String(), Type.Object({}, { additionalProperties: true })])),
  },
  { additionalProperties: true },
);

export function imagesRoutes(app: FastifyInstance, pipeline: Pipeline, prices: ImagePrices): void {
  const handler = (shape: ImagesShape) => async (request: any, reply: any) => {
    const principal = requireUser(request);
    const body = request.body as Record<string, any>;
    for (const k of ['n', 'size', 'quality', 'style', 'response_format'])
      if (body[k] === null) delete body[k];
    const n = (body.n as number | undefined) ?? 1;
    const size = body.size as string | undefined;
    const call = inferenceCall(request, principal, {
      endpoint: 'images.generations',
      model: body.model as string,
      providerPref: parseProviderPreference(body.provider),
      stream: false,
      promptTokensBound: 0,
      maxOutputTokens: 0,
      choices: 1,
      units: n,
      priceOf: prices.priceOf(size),
    });
    await pipeline.run(call, imagesAdapter(body, n, shape), reply);
    return reply;
  };
  app.post(
    '/v1/images/generations',
    {
      schema: {
        tags: ['inference'],
        summary: 'Image generation (OpenAI-compatible), billed per image',
        body: ImageGenerationBody,
      },
      config: { auth: 'user', inference: true },
    },
    handler('openai'),
  );
  app.post(
    '/images/generate',
    {
      schema: {
        tags: ['inference'],
        summary: 'Image generation ({success, data, gateway_usage} shape), billed per image',
        body: ImageGenerationBody,
      },
      config: { auth: 'user', inference: true },
    },
    handler('seed'),
  );
}
