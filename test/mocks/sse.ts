// Server-sent events: frame encoding and a fault-aware, paced writer.
import { type Ctx, destroy, end, flushed, head, write } from './http.js';

export interface Frame {
  /** Raw SSE text including the blank-line terminator. */
  text: string;
  /** Content frames are what `chunks`, `chunkIntervalMs` and stall/break `afterChunks` count. */
  content?: boolean;
}

export function sseData(data: unknown, event?: string): string {
  const json = typeof data === 'string' ? data : JSON.stringify(data);
  return `${event ? `event: ${event}\n` : ''}data: ${json}\n\n`;
}

export function frame(data: unknown, opts: { event?: string; content?: boolean } = {}): Frame {
  return { text: sseData(data, opts.event), content: opts.content };
}

export function comment(text: string): Frame {
  return { text: `: ${text}\n\n` };
}

export const DONE: Frame = { text: 'data: [DONE]\n\n' };

/**
 * Write a stream. Faults:
 *  - stall/break: every frame before the (afterChunks+1)-th content frame is sent (when there are fewer
 *    content frames, everything up to and including the last one), then the stream stops forever
 *    (connection left open) or the socket is destroyed.
 *  - malformed: `malformed` (a syntactically broken SSE event) is written right after the first content
 *    frame (or before the first frame when there is none), then the stream continues and finishes.
 *  - oversized: an SSE comment of `bytes` bytes is written before the first frame.
 */
export async function streamFrames(ctx: Ctx, frames: Frame[], malformed: string): Promise<void> {
  if (
    !head(ctx, 200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache',
      connection: 'keep-alive',
    })
  )
    return;
  ctx.res.flushHeaders();
  const f = ctx.fault;
  let cut = frames.length;
  if (f?.type === 'stall' || f?.type === 'break') {
    let seen = 0;
    let lastContent = -1;
    cut = -1;
    for (let i = 0; i < frames.length; i++) {
      if (!frames[i].content) continue;
      if (seen === f.afterChunks) {
        cut = i;
        break;
      }
      seen++;
      lastContent = i;
    }
    if (cut < 0) cut = lastContent + 1;
  }
  if (f?.type === 'oversized') write(ctx, `: ${'x'.repeat(Math.max(0, f.bytes - 4))}\n\n`);
  let malformedPending = f?.type === 'malformed';
  if (malformedPending && !frames.some((fr) => fr.content)) {
    write(ctx, malformed);
    malformedPending = false;
  }
  for (let i = 0; i < cut; i++) {
    const fr = frames[i];
    if (fr.content && ctx.opts.chunkIntervalMs > 0 && !(await ctx.sleep(ctx.opts.chunkIntervalMs))) return;
    if (!write(ctx, fr.text)) return;
    if (fr.content && malformedPending) {
      write(ctx, malformed);
      malformedPending = false;
    }
  }
  if (f?.type === 'stall') return; // keep the connection open, send nothing more
  if (f?.type === 'break') {
    await flushed(ctx);
    destroy(ctx);
    return;
  }
  end(ctx);
}
