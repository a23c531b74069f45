/**
 * Incremental SSE splitter: feeds decoded text in, hands complete events out as their raw text
 * (so they can be relayed byte for byte) together with the joined `data:` payload.
 */
export interface SseEvent {
  raw: string;
  data: string | null;
  event: string | null;
}

export class SseSplitter {
  private buf = '';
  private readonly decoder = new TextDecoder();

  push(chunk: Uint8Array, onEvent: (e: SseEvent) => void): void {
    this.buf += this.decoder.decode(chunk, { stream: true });
    this.drain(onEvent);
  }

  /** Anything left when the stream ended without a blank line. */
  end(onEvent: (e: SseEvent) => void): void {
    this.buf += this.decoder.decode();
    if (this.buf.trim()) {
      this.buf += '\n\n';
      this.drain(onEvent);
    }
    this.buf = '';
  }

  get pendingBytes(): number {
    return this.buf.length;
  }

  private drain(onEvent: (e: SseEvent) => void): void {
    if (this.buf.includes('\r')) this.buf = this.buf.replace(/\r\n?/g, '\n');
    let start = 0;
    for (;;) {
      const end = this.buf.indexOf('\n\n', start);
      if (end < 0) break;
      const raw = this.buf.slice(start, end + 2);
      start = end + 2;
      onEvent(parseEvent(raw));
    }
    if (start > 0) this.buf = this.buf.slice(start);
  }
}

export function parseEvent(raw: string): SseEvent {
  let data: string | null = null;
  let event: string | null = null;
  let from = 0;
  while (from < raw.length) {
    let nl = raw.indexOf('\n', from);
    if (nl < 0) nl = raw.length;
    const line = raw.slice(from, nl);
    from = nl + 1;
    if (line.startsWith('data:')) {
      const v = line.charCodeAt(5) === 32 ? line.slice(6) : line.slice(5);
      data = data === null ? v : `${data}\n${v}`;
    } else if (line.startsWith('event:')) {
      event = line.slice(6).trim();
    }
  }
  return { raw, data, event };
}
