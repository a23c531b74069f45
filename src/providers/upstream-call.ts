import { createRequire } from 'node:module';
import type { RequestAbort } from '../lib/abort.js';
import { errors } from './undici.js';

const require = createRequire(import.meta.url);
const { parseHeaders } = require('undici/lib/core/util.js') as {
  parseHeaders(raw: Buffer[]): Record<string, string | string[] | undefined>;
};

/** An upstream answer: status, headers, and its body as it arrives. */
export interface UpstreamResponse {
  statusCode: number;
  headers: Record<string, string | string[] | undefined>;
  body: UpstreamBody;
}

/** Bytes queued unread before the upstream socket is paused (a Readable's default high-water mark). */
const HIGH_WATER = 64 * 1024;
const DONE: IteratorReturnResult<undefined> = Object.freeze({ value: undefined, done: true });

/** What `UpstreamBody.read` hands a body to, chunk by chunk (push mode). */
export interface BodyReader {
  /** One chunk, as undici read it. May call the body's `pause()` or `destroy()`; must not throw. */
  chunk(c: Buffer): void;
  /** Called once: the body ended (null), failed (its error) or was destroyed (null). */
  end(err: Error | null): void;
}

/**
 * An upstream body: the chunks undici reads, handed to one reader: a `for await` loop, `all()`, or
 * (for relaying streams) a `BodyReader` through `read()`. It does what the gateway needs of undici's
 * Readable body (back-pressure, errors, destroy) without a stream per request: the Readable, its
 * async iterator and their events were ~5 % of the gateway's CPU.
 * - A reader that falls 64 KiB behind pauses the socket; reading resumes it.
 * - An upstream error (timeout, reset, abort) is thrown to the reader after the chunks already read.
 * - `destroy()` (or leaving the loop early) drops what is queued and aborts an unfinished request;
 *   its socket is closed, never reused mid-body.
 */
export class UpstreamBody implements AsyncIterableIterator<Buffer> {
  private chunks: (Buffer | undefined)[] = [];
  private head = 0;
  private queued = 0;
  private paused = false;
  private ended = false;
  private error: Error | null = null;
  private waiting: { resolve(r: IteratorResult<Buffer>): void; reject(e: Error): void } | null = null;
  /** `all()` is waiting: every chunk is kept (no pause) until the end, up to `limit` bytes. */
  private collector: { resolve(b: Buffer): void; reject(e: Error): void; limit: number } | null = null;
  /** `read()`'s reader, until its `end` was called; `readerPaused` while the client is slow. */
  private reader: BodyReader | null = null;
  private readerPaused = false;
  destroyed = false;

  constructor(
    private readonly resumeSocket: () => void,
    private readonly abort: (err: Error) => void,
  ) {}

  /** From undici: false pauses the socket until the reader catches up. */
  push(chunk: Buffer): boolean {
    if (this.destroyed) return true;
    const c = this.collector;
    if (c) {
      this.chunks.push(chunk);
      this.queued += chunk.length;
      if (this.queued > c.limit) {
        this.collector = null;
        this.destroy();
        c.reject(new BodyTooLarge(c.limit));
      }
      return true;
    }
    const r = this.reader;
    if (r && !this.readerPaused && this.head === this.chunks.length) {
      r.chunk(chunk);
      return true;
    }
    const w = this.waiting;
    if (w) {
      this.waiting = null;
      w.resolve({ value: chunk, done: false });
      return true;
    }
    this.chunks.push(chunk);
    this.queued += chunk.length;
    if (this.queued < HIGH_WATER) return true;
    this.paused = true;
    return false;
  }

  end(): void {
    this.ended = true;
    const c = this.collector;
    if (c) {
      this.collector = null;
      c.resolve(this.rest());
      return;
    }
    if (this.reader) {
      this.deliver(); // after what is queued, once the reader is not paused
      return;
    }
    const w = this.waiting;
    if (w) {
      this.waiting = null;
      w.resolve(DONE);
    }
  }

  fail(err: Error): void {
    if (this.destroyed || this.ended || this.error) return;
    this.error = err;
    const c = this.collector;
    if (c) {
      this.collector = null;
      this.destroyed = true;
      c.reject(err);
      return;
    }
    if (this.reader) {
      this.deliver(); // after what is queued, once the reader is not paused
      return;
    }
    const w = this.waiting;
    if (w) {
      this.waiting = null;
      this.destroyed = true;
      w.reject(err);
    }
  }

  /**
   * Push mode, for relaying streams: every chunk is handed to `reader.chunk` as undici reads it, in
   * the same call, with no promise per chunk. A `for await` loop takes a promise and a result object
   * per chunk, and keeps them with the loop's suspended frames while it waits, up to seconds per
   * chunk on a slow stream: with thousands of streams open, objects that outlive a young-generation
   * GC and are copied by it. `pause()` while the client is slow (chunks queue; past 64 KiB the socket
   * pauses), `resume()` hands over what queued. Not to be mixed with iterating or `all()`.
   */
  read(reader: BodyReader): void {
    this.reader = reader;
    if (this.destroyed) this.finish(this.error);
    else this.deliver();
  }

  pause(): void {
    this.readerPaused = true;
  }

  resume(): void {
    if (!this.readerPaused) return;
    this.readerPaused = false;
    this.deliver();
  }

  /** Hand the queued chunks to the reader, then the end or the error if they came. */
  private deliver(): void {
    const r = this.reader;
    if (!r) return;
    while (!this.readerPaused && !this.destroyed && this.head < this.chunks.length) r.chunk(this.shift());
    if (this.readerPaused || this.destroyed) return;
    if (this.error) {
      this.destroyed = true;
      this.finish(this.error);
    } else if (this.ended) this.finish(null);
    else if (this.paused) {
      this.paused = false;
      this.resumeSocket();
    }
  }

  private finish(err: Error | null): void {
    const r = this.reader;
    if (!r) return;
    this.reader = null;
    r.end(err);
  }

  /**
   * The whole body in one Buffer, with one promise (a `for await` loop takes a promise and a result
   * object per chunk): for JSON answers. Rejects with `BodyTooLarge` past `limit` bytes (the request
   * is aborted), or with the upstream's error. Not to be mixed with iterating.
   */
  all(limit: number): Promise<Buffer> {
    if (this.error) {
      this.destroyed = true;
      return Promise.reject(this.error);
    }
    if (this.queued > limit) {
      this.destroy();
      return Promise.reject(new BodyTooLarge(limit));
    }
    if (this.ended) return Promise.resolve(this.rest());
    if (this.destroyed) return Promise.reject(new errors.RequestAbortedError());
    return new Promise((resolve, reject) => {
      this.collector = { resolve, reject, limit };
      if (this.paused) {
        this.paused = false;
        this.resumeSocket();
      }
    });
  }

  /** The oldest queued chunk, taken off the queue (there is one). */
  private shift(): Buffer {
    const c = this.chunks[this.head]!;
    this.chunks[this.head++] = undefined;
    this.queued -= c.length;
    if (this.head === this.chunks.length) {
      this.chunks.length = 0;
      this.head = 0;
    }
    return c;
  }

  /** The chunks not read yet, as one Buffer. */
  private rest(): Buffer {
    const parts = this.head === 0 ? this.chunks : this.chunks.slice(this.head);
    this.chunks = [];
    this.head = 0;
    this.queued = 0;
    return parts.length === 1 ? parts[0]! : Buffer.concat(parts as Buffer[]);
  }

  next(): Promise<IteratorResult<Buffer>> {
    if (this.head < this.chunks.length) {
      const c = this.shift();
      if (this.paused && this.queued < HIGH_WATER) {
        this.paused = false;
        this.resumeSocket();
      }
      return Promise.resolve({ value: c, done: false });
    }
    if (this.error) {
      this.destroyed = true;
      return Promise.reject(this.error);
    }
    if (this.ended || this.destroyed) return Promise.resolve(DONE);
    return new Promise((resolve, reject) => {
      this.waiting = { resolve, reject };
    });
  }

  /** Leaving a `for await` loop early. */
  return(): Promise<IteratorResult<Buffer>> {
    this.destroy();
    return Promise.resolve(DONE);
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    const c = this.collector;
    if (c) {
      this.collector = null;
      c.reject(new errors.RequestAbortedError());
    }
    this.chunks = [];
    this.head = 0;
    this.queued = 0;
    if (!this.ended && !this.error) this.abort(new errors.RequestAbortedError());
    const w = this.waiting;
    if (w) {
      this.waiting = null;
      w.resolve(DONE);
    }
    this.finish(null);
  }

  /** The whole body as text (for small, non-hot-path answers such as catalogs). */
  async text(): Promise<string> {
    const parts: Buffer[] = [];
    for await (const c of this) parts.push(c);
    return Buffer.concat(parts).toString('utf8');
  }
}

/** An upstream body longer than the gateway reads (see `UpstreamBody.all`). */
export class BodyTooLarge extends Error {
  constructor(readonly limit: number) {
    super(`upstream body larger than ${limit} bytes`);
  }
}

/**
 * undici dispatch handler for one request: resolves with the response at its headers, then feeds
 * the body. The request's abort aborts it at any stage (queued, connecting, reading).
 */
export class UpstreamCall {
  private body: UpstreamBody | null = null;
  private abortFn: ((err: Error) => void) | null = null;

  constructor(
    private readonly resolve: (r: UpstreamResponse) => void,
    private readonly reject: (e: Error) => void,
    private readonly cancel: RequestAbort | undefined,
  ) {
    cancel?.on(this.onAbort);
  }

  private readonly onAbort = (reason: Error): void => {
    if (this.body) this.body.fail(reason);
    this.abortFn?.(reason);
  };

  onConnect(abort: (err: Error) => void): void {
    if (this.cancel?.aborted) {
      abort(this.cancel.reason!);
      return;
    }
    this.abortFn = abort;
  }

  onHeaders(statusCode: number, rawHeaders: Buffer[], resume: () => void): boolean {
    if (statusCode < 200) return true; // 1xx: informational, the answer follows
    const body = new UpstreamBody(resume, this.abortFn!);
    this.body = body;
    this.resolve({ statusCode, headers: parseHeaders(rawHeaders), body });
    return true;
  }

  onData(chunk: Buffer): boolean {
    return this.body!.push(chunk);
  }

  onComplete(): void {
    this.unlisten();
    this.body!.end();
  }

  onError(err: Error): void {
    this.unlisten();
    // Before the headers the request fails; after them, its body does (undici calls this once).
    if (this.body) this.body.fail(err);
    else this.reject(err);
  }

  private unlisten(): void {
    this.cancel?.off(this.onAbort);
  }
}
