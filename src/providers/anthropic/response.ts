import type { Usage } from '../../billing/cost.js';
import { newId } from '../../lib/ids.js';
import { finishReasonOf, JSON_RESPONSE_TOOL, stopReasonOf } from './request.js';
import { anthropicUsageOf, openAiUsageOf } from './usage.js';

type Obj = Record<string, any>;

/**
 * Anthropic message → OpenAI chat completion (`usage` given in our exact terms). With `jsonTool`
 * the forced JSON_RESPONSE_TOOL call is the answer: its input becomes the message text.
 */
export function anthropicToChatCompletion(
  msg: Obj,
  model: string,
  usage: Usage | null,
  jsonTool = false,
): Obj {
  const text: string[] = [];
  const reasoning: string[] = [];
  const toolCalls: Obj[] = [];
  for (const b of Array.isArray(msg?.content) ? msg.content : []) {
    if (b?.type === 'text') text.push(b.text);
    else if (jsonTool && b?.type === 'tool_use' && b.name === JSON_RESPONSE_TOOL)
      text.push(JSON.stringify(b.input ?? {}));
    else if (b?.type === 'thinking' && typeof b.thinking === 'string') reasoning.push(b.thinking);
    else if (b?.type === 'tool_use')
      toolCalls.push({
        id: b.id,
        type: 'function',
        function: { name: b.name, arguments: JSON.stringify(b.input ?? {}) },
      });
  }
  const message: Obj = { role: 'assistant', content: text.length ? text.join('') : null };
  if (reasoning.length) message.reasoning = reasoning.join('');
  if (toolCalls.length) message.tool_calls = toolCalls;
  return {
    id: `chatcmpl-${msg?.id ?? newId('msg')}`,
    object: 'chat.completion',
    created: Math.floor(Date.now() / 1000),
    model,
    choices: [
      {
        index: 0,
        message,
        logprobs: null,
        // a forced JSON tool's call is the answer, not a tool call
        finish_reason:
          jsonTool && toolCalls.length === 0 && msg?.stop_reason === 'tool_use'
            ? 'stop'
            : (finishReasonOf(msg?.stop_reason) ?? 'stop'),
      },
    ],
    ...(usage ? { usage: openAiUsageOf(usage) } : {}),
  };
}

/** Anthropic tool input from OpenAI's arguments string. */
export function toolInputOf(args: unknown): unknown {
  if (typeof args !== 'string' || args.trim() === '') return {};
  try {
    return JSON.parse(args);
  } catch {
    return { _raw: args };
  }
}

/** OpenAI chat completion → Anthropic message. */
export function chatCompletionToAnthropic(
  chat: Obj,
  model: string,
  usage: Usage,
  stopSequences?: unknown,
): Obj {
  const choice = chat?.choices?.[0] ?? {};
  const m = choice.message ?? {};
  const content: Obj[] = [];
  if (typeof m.reasoning === 'string' && m.reasoning)
    content.push({ type: 'thinking', thinking: m.reasoning, signature: '' });
  if (typeof m.content === 'string' && m.content !== '') content.push({ type: 'text', text: m.content });
  for (const tc of Array.isArray(m.tool_calls) ? m.tool_calls : []) {
    content.push({
      type: 'tool_use',
      id: tc.id ?? newId('toolu'),
      name: tc.function?.name,
      input: toolInputOf(tc.function?.arguments),
    });
  }
  let stop = stopReasonOf(choice.finish_reason ?? 'stop');
  let stopSequence: string | null = null;
  // OpenAI does not say which stop sequence ended the text; "stop" with stop sequences given is reported as end_turn.
  if (stop === 'end_turn' && typeof choice.stop_reason === 'string' && Array.isArray(stopSequences)) {
    if (stopSequences.includes(choice.stop_reason)) {
      stop = 'stop_sequence';
      stopSequence = choice.stop_reason;
    }
  }
  return {
    id: `msg_${String(chat?.id ?? newId('x')).replace(/^chatcmpl-/, '')}`,
    type: 'message',
    role: 'assistant',
    model,
    content,
    stop_reason: stop,
    stop_sequence: stopSequence,
    usage: anthropicUsageOf(usage),
  };
}
