import { Type } from '@sinclair/typebox';

const Item = Type.Object({}, { additionalProperties: true });

/** OpenAI's Responses request: the fields the gateway reads are checked; the rest passes through. */
export const ResponsesBody = Type.Object(
  {
    model: Type.String({ minLength: 1 }),
    input: Type.Union([Type.String({ minLength: 1 }), Type.Array(Item, { minItems: 1 })]),
    instructions: Type.Optional(Type.Union([Type.String(), Type.Null()])),
    max_output_tokens: Type.Optional(Type.Union([Type.Integer({ minimum: 1 }), Type.Null()])),
    previous_response_id: Type.Optional(Type.Union([Type.String({ minLength: 1 }), Type.Null()])),
    store: Type.Optional(Type.Union([Type.Boolean(), Type.Null()])),
    stream: Type.Optional(Type.Union([Type.Boolean(), Type.Null()])),
    tools: Type.Optional(
      Type.Array(Type.Object({ type: Type.String({ minLength: 1 }) }, { additionalProperties: true })),
    ),
    text: Type.Optional(Type.Object({}, { additionalProperties: true })),
    provider: Type.Optional(Type.Union([Type.String(), Type.Object({}, { additionalProperties: true })])),
    models: Type.Optional(Type.Array(Type.String())),
  },
  { additionalProperties: true },
);
