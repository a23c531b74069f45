import { Type } from '@sinclair/typebox';

const Message = Type.Object(
  {
    role: Type.String({ minLength: 1 }),
    content: Type.Optional(Type.Union([Type.String(), Type.Array(Type.Any()), Type.Null()])),
  },
  { additionalProperties: true },
);

/** OpenAI's chat request: the fields the gateway reads are checked; every other field passes through untouched. */
export const ChatCompletionBody = Type.Object(
  {
    model: Type.String({ minLength: 1 }),
    messages: Type.Array(Message, { minItems: 1 }),
    stream: Type.Optional(Type.Boolean()),
    stream_options: Type.Optional(Type.Union([Type.Object({}, { additionalProperties: true }), Type.Null()])),
    max_tokens: Type.Optional(Type.Union([Type.Integer({ minimum: 1 }), Type.Null()])),
    max_completion_tokens: Type.Optional(Type.Union([Type.Integer({ minimum: 1 }), Type.Null()])),
    n: Type.Optional(Type.Union([Type.Integer({ minimum: 1, maximum: 128 }), Type.Null()])),
    tools: Type.Optional(Type.Array(Type.Any())),
    provider: Type.Optional(Type.Union([Type.String(), Type.Object({}, { additionalProperties: true })])),
    models: Type.Optional(Type.Array(Type.String())),
  },
  { additionalProperties: true },
);
