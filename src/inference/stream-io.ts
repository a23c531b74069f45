import type { ServerResponse } from 'node:http';
import type { RequestAbort } from '../lib/abort.js';

/** Wait for a slow client to drain, or for it to go away: back-pressure without buffering. */
export function drain(raw: ServerResponse, signal: RequestAbort): Promise<void> {
  if (raw.destroyed || signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      raw.off('drain', done);
      raw.off('close', done);
      signal.off(done);
      resolve();
    };
    raw.on('drain', done);
    raw.on('close', done);
    signal.on(done);
  });
}

export const SSE_HEADERS = {
  'content-type': 'text/event-stream; charset=utf-8',
  'cache-control': 'no-cache',
  connection: 'keep-alive',
  'x-accel-buffering': 'no',
} as const;

export const sseData = (obj: unknown): string => `data: ${JSON.stringify(obj)}\n\n`;
