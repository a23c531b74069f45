import { emptyUsage, type Usage } from '../../billing/cost.js';
import { countTokens, promptText } from '../estimate.js';

const IMAGE_TOKENS = 765;
const PER_MESSAGE = 3;

/** Usage by our own count, for an upstream that reported none (or broke off before reporting). */
export async function countChatUsage(
  messages: readonly unknown[],
  completionText: string,
  extra?: unknown,
): Promise<Usage> {
  const p = promptText(messages);
  let prompt = (await countTokens(p.text)) + p.images * IMAGE_TOKENS + p.messages * PER_MESSAGE + 3;
  if (extra) prompt += await countTokens(JSON.stringify(extra));
  return { ...emptyUsage(), promptTokens: prompt, completionTokens: await countTokens(completionText) };
}

/** Generated text of a chat completion (all choices, tool call arguments included). */
export function completionTextOf(body: any): string {
  const parts: string[] = [];
  for (const c of Array.isArray(body?.choices) ? body.choices : []) {
    const m = c?.message;
    if (typeof m?.content === 'string') parts.push(m.content);
    if (typeof m?.reasoning === 'string') parts.push(m.reasoning);
    for (const tc of Array.isArray(m?.tool_calls) ? m.tool_calls : []) {
      if (typeof tc?.function?.name === 'string') parts.push(tc.function.name);
      if (typeof tc?.function?.arguments === 'string') parts.push(tc.function.arguments);
    }
  }
  return parts.join('');
}
