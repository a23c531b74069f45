// Per-request context and fault-aware response writers shared by every mock endpoint.
import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Fault, MockKind, MockModel, MockOptions, RecordedCall } from './types.js';

export interface ResolvedOptions extends MockOptions {
  latencyMs: number;
  chunkIntervalMs: number;
  chunks: number;
}

export interface Ctx {
  kind: MockKind;
  req: IncomingMessage;
  res: ServerResponse;
  call: RecordedCall;
  body: any;
  /** Fault for this request (queued or default), or null. */
  fault: Fault | null;
  opts: ResolvedOptions;
  models: MockModel[];
  requestId: string;
  /** Wait ms; resolves false when the client went away or the mock was closed meanwhile. */
  sleep(ms: number): Promise<boolean>;
}

const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

export function randomId(prefix: string, len = 24): string {
  const bytes = randomBytes(len);
  let s = prefix;
  for (let i = 0; i < len; i++) s += ALNUM[bytes[i] % ALNUM.length];
  return s;
}

export function nowSec(): number {
  return Math.floor(Date.now() / 1000);
}

/** True when nothing more can or should be written. */
export function gone(ctx: Ctx): boolean {
  const { res } = ctx;
  return res.destroyed || res.writableEnded || !!res.socket?.destroyed;
}

function kindHeaders(ctx: Ctx): Record<string, string> {
  switch (ctx.kind) {
    case 'anthropic':
      return { 'request-id': ctx.requestId, 'anthropic-organization-id': 'org-mock' };
    case 'openai':
      return {
        'x-request-id': ctx.requestId,
        'openai-organization': 'org-mock',
        'openai-processing-ms': String(ctx.opts.latencyMs),
        'openai-version': '2020-10-01',
        'x-ratelimit-limit-requests': '10000',
        'x-ratelimit-remaining-requests': '9999',
        'x-ratelimit-reset-requests': '6ms',
        'x-ratelimit-limit-tokens': '10000000',
        'x-ratelimit-remaining-tokens': '9999990',
        'x-ratelimit-reset-tokens': '0s',
      };
    default:
      return { 'x-request-id': ctx.requestId };
  }
}

/** Write the response head once; records the status on the call. */
export function head(ctx: Ctx, status: number, headers: Record<string, string | number> = {}): boolean {
  if (gone(ctx)) return false;
  if (ctx.res.headersSent) return true;
  ctx.call.status = status;
  ctx.res.writeHead(status, { ...kindHeaders(ctx), ...headers });
  return true;
}

export function write(ctx: Ctx, text: string): boolean {
  if (gone(ctx)) return false;
  ctx.res.write(text);
  return true;
}

export function end(ctx: Ctx, text?: string): void {
  if (gone(ctx)) return;
  ctx.res.end(text);
}

/** Destroy the TCP connection under this request. */
export function destroy(ctx: Ctx): void {
  ctx.req.socket.destroy();
}

/** Whether the fault (if any) lets a complete response through: stall/break never do; malformed breaks a JSON body. */
export function intact(ctx: Ctx, stream: boolean): boolean {
  const t = ctx.fault?.type;
  if (t === 'stall' || t === 'break') return false;
  return stream || t !== 'malformed';
}

/** Resolves once what was written has left the socket's user-space buffer (bounded wait). */
export async function flushed(ctx: Ctx): Promise<void> {
  const socket = ctx.req.socket;
  for (let i = 0; i < 100 && !socket.destroyed && socket.writableLength > 0; i++) {
    await new Promise((r) => setTimeout(r, 2));
  }
  await new Promise((r) => setImmediate(r));
}

/**
 * `base` (a JSON body ending in an empty `x_padding` field) padded by `missing` bytes, written as a
 * real large upstream would: the head at once, then the padding in 1 MiB pieces as the socket
 * drains. (Building and writing 64 MiB in one go would hold this process — which in tests is the
 * gateway's too — for hundreds of ms before the first byte, and trip the gateway's first-byte
 * timeout instead.)
 */
async function sendPadded(
  ctx: Ctx,
  status: number,
  base: string,
  missing: number,
  headers: Record<string, string | number>,
): Promise<void> {
  const length = Buffer.byteLength(base) + missing;
  head(ctx, status, { 'content-type': 'application/json', 'content-length': length, ...headers });
  write(ctx, base.slice(0, -2)); // up to the padding's opening quote; `"}` closes it
  const piece = 'x'.repeat(1024 * 1024);
  for (let left = missing; left > 0; left -= piece.length) {
    if (gone(ctx)) return;
    if (!ctx.res.write(left >= piece.length ? piece : piece.slice(0, left))) await drained(ctx);
  }
  end(ctx, '"}');
}

function drained(ctx: Ctx): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      ctx.res.off('drain', done);
      ctx.res.off('close', done);
      resolve();
    };
    ctx.res.on('drain', done);
    ctx.res.on('close', done);
  });
}

/**
 * Send a JSON body. For 2xx answers the body-level faults apply:
 * malformed → truncated JSON; oversized → padded to `bytes`;
 * stall → head + half the body, never finished; break → head + half the body, then the socket is destroyed.
 */
export function sendJson(
  ctx: Ctx,
  status: number,
  body: unknown,
  headers: Record<string, string | number> = {},
): void {
  const f = status < 300 ? ctx.fault : null;
  let text = JSON.stringify(body);
  if (f?.type === 'oversized') {
    // padded to exactly `bytes` bytes with an `x_padding` field (when larger than the plain body)
    text = JSON.stringify({ ...(body as Record<string, unknown>), x_padding: '' });
    const missing = f.bytes - Buffer.byteLength(text);
    if (missing > 0) {
      void sendPadded(ctx, status, text, missing, headers);
      return;
    }
  }
  const half = text.slice(0, Math.max(1, Math.floor(text.length / 2)));
  if (f?.type === 'malformed') text = half;
  const h = { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers };
  if (f?.type === 'stall' || f?.type === 'break') {
    head(ctx, status, h);
    write(ctx, half);
    if (f.type === 'break') void flushed(ctx).then(() => destroy(ctx));
    return;
  }
  head(ctx, status, h);
  end(ctx, text);
}

export function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    req.on('data', (c: Buffer) => parts.push(c));
    req.on('end', () => resolve(Buffer.concat(parts).toString('utf8')));
    req.on('error', reject);
  });
}

export function headerNumber(req: IncomingMessage, name: string): number | undefined {
  const v = req.headers[name];
  if (typeof v !== 'string' || v.trim() === '') return undefined;
  const n = Number(v);
  return Number.isFinite(n) && n >= 0 ? n : undefined;
}
