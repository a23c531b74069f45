import { buildConnector, Client, type ClientOptions, type Dispatcher, errors } from './undici.js';

type DispatchHandler = Parameters<Dispatcher['dispatch']>[1];

export interface ClientPoolOptions {
  connectMs: number;
  keepAliveTimeout: number;
  headersTimeout: number;
  bodyTimeout: number;
}

/**
 * Keep-alive HTTP/1.1 connections to one upstream origin, one request at a time on each, with no
 * cap on their number (long streams hold theirs for minutes; concurrency is bounded on the inbound
 * side). It does what undici's `Pool` does for the gateway in O(1) per request: `Pool` looks for a
 * free connection by scanning all of them, on every request and once more after it (to keep a spare
 * ready), which with 2,000 open streams was 5–8 % of the gateway's CPU while they opened.
 * - Free connections are a stack: the most recently used (warmest) socket is taken first, and the
 *   ones left idle reach the keep-alive timeout and close.
 * - A connection whose socket closes while it is free is dropped; one whose connect failed is never
 *   given another request (as `Pool` does, nodejs/undici#3895).
 * - All share one connector (and its TLS session cache), as `Pool`'s clients do.
 */
export class ClientPool {
  private free: Client[] = [];
  /** Entries of `free` retired while there: skipped when reached, swept out once they are half of it. */
  private stale = 0;
  private readonly isFree = new WeakSet<Client>();
  /** Connections open or opening; a retired one is no longer in it. */
  private readonly all = new Set<Client>();
  private readonly options: ClientOptions;
  private closed = false;

  constructor(
    private readonly origin: URL,
    o: ClientPoolOptions,
  ) {
    this.options = {
      pipelining: 1,
      keepAliveTimeout: o.keepAliveTimeout,
      headersTimeout: o.headersTimeout,
      bodyTimeout: o.bodyTimeout,
      connect: buildConnector({ timeout: o.connectMs }),
    };
  }

  /** Connections open or opening (free and busy). */
  get size(): number {
    return this.all.size;
  }

  /** Connections waiting for a request. */
  get idle(): number {
    return this.free.length - this.stale;
  }

  dispatch(opts: Dispatcher.DispatchOptions, handler: DispatchHandler): void {
    if (this.closed) {
      handler.onError?.(new errors.ClientClosedError());
      return;
    }
    const client = this.takeFree() ?? this.open();
    // true: it can take another request now (it never can with one at a time, but undici decides).
    // false with nothing queued: undici refused the request at once (an invalid header, say) and
    // answered its handler with the error; the connection was given nothing and will not drain.
    if (client.dispatch(opts, handler) || client.stats.size === 0) this.release(client);
  }

  private takeFree(): Client | undefined {
    for (;;) {
      const client = this.free.pop();
      if (!client || this.isFree.delete(client)) return client;
      this.stale--; // retired while free
    }
  }

  private open(): Client {
    const client = new Client(this.origin, this.options);
    this.all.add(client);
    client.on('drain', () => this.release(client));
    client.on('disconnect', () => {
      // Closed while free (keep-alive timeout, the upstream closed it): drop it. Closed while busy:
      // its request fails, and the client (which reconnects on its next request) drains back.
      if (this.isFree.has(client)) this.retire(client);
    });
    client.on('connectionError', () => this.retire(client));
    return client;
  }

  private release(client: Client): void {
    if (this.closed || client.destroyed || !this.all.has(client) || this.isFree.has(client)) return;
    this.isFree.add(client);
    this.free.push(client);
  }

  /** Never given another request. It has no socket and no request left; dropped, it is collected. */
  private retire(client: Client): void {
    this.all.delete(client);
    if (this.isFree.delete(client)) {
      // Left in the stack: after a burst, the connections it left free reach their keep-alive
      // timeout together, and taking each out of the stack would search it each time.
      this.stale++;
      if (this.stale > 64 && this.stale * 2 > this.free.length) {
        this.free = this.free.filter((c) => this.isFree.has(c));
        this.stale = 0;
      }
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    this.free = [];
    this.stale = 0;
    await Promise.all([...this.all].map((c) => c.close().catch(() => c.destroy())));
    this.all.clear();
  }
}
