import { Type } from '@sinclair/typebox';

const Block = Type.Object({ type: Type.String({ minLength: 1 }) }, { additionalProperties: true });

const Message = Type.Object(
  {
    role: Type.Union([Type.Literal('user'), Type.Literal('assistant')]),
    content: Type.Union([Type.String(), Type.Array(Block)]),
  },
  { additionalProperties: true },
);

/** Anthropic's Messages request: the fields the gateway reads are checked; the rest passes through. */
export const MessagesBody = Type.Object(
  {
    model: Type.String({ minLength: 1 }),
    max_tokens: Type.Integer({ minimum: 1 }),
    messages: Type.Array(Message, { minItems: 1 }),
    system: Type.Optional(Type.Union([Type.String(), Type.Array(Block)])),
    stream: Type.Optional(Type.Boolean()),
    stop_sequences: Type.Optional(Type.Array(Type.String())),
    temperature: Type.Optional(Type.Number({ minimum: 0, maximum: 2 })),
    top_p: Type.Optional(Type.Number({ minimum: 0, maximum: 1 })),
    tools: Type.Optional(
      Type.Array(Type.Object({ name: Type.String({ minLength: 1 }) }, { additionalProperties: true })),
    ),
    tool_choice: Type.Optional(Type.Object({ type: Type.String() }, { additionalProperties: true })),
    provider: Type.Optional(Type.Union([Type.String(), Type.Object({}, { additionalProperties: true })])),
  },
  { additionalProperties: true },
);

/** `POST /v1/messages/count_tokens`: a Messages request without max_tokens. */
export const CountTokensBody = Type.Object(
  {
    model: Type.String({ minLength: 1 }),
    messages: Type.Array(Message, { minItems: 1 }),
    system: Type.Optional(Type.Union([Type.String(), Type.Array(Block)])),
    tools: Type.Optional(
      Type.Array(Type.Object({ name: Type.String({ minLength: 1 }) }, { additionalProperties: true })),
    ),
  },
  { additionalProperties: true },
);
