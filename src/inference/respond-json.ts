import type { Usage } from '../billing/cost.js';
import { GatewayError } from '../lib/errors.js';
import type { UpstreamResponse } from '../providers/upstream.js';
import { BodyTooLarge } from '../providers/upstream-call.js';
import type { RespondIO } from './pipeline.js';

export const UPSTREAM_MAX_BODY_BYTES = 64 * 1024 * 1024;

export interface JsonRespondOptions {
  /** Usage the upstream reported (validated), or null. */
  usageOf(body: any): Usage | null;
  /** Our own count when the upstream reported none. */
  countUsage(body: any): Promise<Usage>;
  /** Build the client's body; default: the upstream body as it was plus `gateway_usage`. */
  render?(body: any, text: string, gatewayUsage: Record<string, unknown>): string;
  /** Runs after the charge is settled and before the answer goes out (e.g. saving chat history). */
  beforeSend?(body: any): Promise<void>;
}

/** Read an upstream JSON body, settle the exact cost, then answer: settle → respond. */
export async function respondJson(
  res: UpstreamResponse,
  io: RespondIO,
  opts: JsonRespondOptions,
): Promise<void> {
  const text = await readUpstreamText(res, io);
  const upstreamMs = io.upstreamMs();
  let body: any;
  try {
    body = JSON.parse(text);
  } catch {
    throw notJson(io);
  }
  const usage = opts.usageOf(body) ?? (await opts.countUsage(body));
  const settled = await io.settle(usage, 'ok');
  io.remember?.('json', text, usage);
  const gu = io.gatewayUsage(settled);
  const out = opts.render ? opts.render(body, text, gu) : spliceField(text, 'gateway_usage', gu);
  if (opts.beforeSend) await opts.beforeSend(body);
  const headers = io.gatewayHeaders();
  headers['x-gatewayz-overhead-ms'] = Math.max(0, performance.now() - io.call.startedAt - upstreamMs).toFixed(
    3,
  );
  io.reply.code(200).headers(headers).type('application/json; charset=utf-8').send(out);
}

/** An upstream body, whole, as text; 502 `upstream_body_too_large` past UPSTREAM_MAX_BODY_BYTES. */
export async function readUpstreamText(res: UpstreamResponse, io: RespondIO): Promise<string> {
  let buf: Buffer;
  try {
    buf = await res.body.all(UPSTREAM_MAX_BODY_BYTES);
  } catch (err) {
    if (!(err instanceof BodyTooLarge)) throw err;
    throw new GatewayError(502, `Provider ${io.target.provider.def.name} sent an oversized response`, {
      type: 'upstream_error',
      code: 'upstream_body_too_large',
    });
  }
  return buf.toString('utf8');
}

/** 502 `upstream_bad_response`: the provider's answer did not parse. */
export function notJson(io: RespondIO): GatewayError {
  return new GatewayError(502, `Provider ${io.target.provider.def.name} sent a response that is not JSON`, {
    type: 'upstream_error',
    code: 'upstream_bad_response',
  });
}

/** Add one field to a JSON object's text without re-serializing the rest. */
export function spliceField(text: string, key: string, value: unknown): string {
  const end = text.lastIndexOf('}');
  if (end < 0) return text;
  let i = end - 1;
  while (i >= 0 && /\s/.test(text[i]!)) i--;
  const sep = text[i] === '{' ? '' : ',';
  return `${text.slice(0, end)}${sep}${JSON.stringify(key)}:${JSON.stringify(value)}${text.slice(end)}`;
}
