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

/**
 * Start a relayed SSE response: status 200 with the gateway's headers and SSE's.
 * Node builds the header block by concatenation, ~80 string pieces for the gateway's 17 headers, and
 * keeps it (as `_header`) for as long as the response lives: a stream held ~1.6 KB more for minutes
 * (heap snapshots, 1,000 open streams: 29.4 → 27.8 KB each). Measuring its UTF-8 length makes V8
 * flatten it in place into one string, and the pieces are collected. Node only reads the field.
 */
export function writeSseHead(raw: ServerResponse, headers: Record<string, string>): void {
  raw.writeHead(200, Object.assign(headers, SSE_HEADERS));
  const block = (raw as unknown as { _header?: unknown })._header;
  if (typeof block === 'string') Buffer.byteLength(block);
}
