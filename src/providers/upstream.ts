import type { RequestAbort } from '../lib/abort.js';
import { ClientPool } from './client-pool.js';
import { UpstreamCall, type UpstreamResponse } from './upstream-call.js';

export type { UpstreamBody, UpstreamResponse } from './upstream-call.js';

export interface UpstreamTimeouts {
  connectMs: number;
  firstByteMs: number;
  idleMs: number;
}

export interface UpstreamRequest {
  baseUrl: string;
  path: string;
  method?: 'GET' | 'POST';
  headers: Record<string, string>;
  body?: string;
  /** The request's abort: ends the call at any stage. */
  abort?: RequestAbort;
  /** Per-request overrides (per-provider settings, the request's remaining time). */
  timeouts?: Partial<UpstreamTimeouts>;
}

/** Keep-alive connection pools, one per upstream origin, shared by every request. */
export class Upstreams {
  private readonly pools = new Map<string, ClientPool>();

  constructor(private readonly timeouts: UpstreamTimeouts) {}

  private pool(origin: string, connectMs = this.timeouts.connectMs): ClientPool {
    // The connect timeout is a pool setting: a provider with its own gets its own pool.
    const key = connectMs === this.timeouts.connectMs ? origin : `${origin}#${connectMs}`;
    let p = this.pools.get(key);
    if (!p) {
      // No cap on connections: long streams hold their socket for minutes, so a capped pool would
      // make new requests wait behind unrelated streams (first byte in seconds at 300+ open streams).
      // Concurrency is bounded by the inbound side (connections, limits), not here.
      p = new ClientPool(new URL(origin), {
        connectMs,
        keepAliveTimeout: 30_000,
        headersTimeout: this.timeouts.firstByteMs,
        bodyTimeout: this.timeouts.idleMs,
      });
      this.pools.set(key, p);
    }
    return p;
  }

  request(req: UpstreamRequest): Promise<UpstreamResponse> {
    const url = this.url(req.baseUrl + req.path);
    const headers: Record<string, string> = {
      ...req.headers,
      accept: req.headers.accept ?? 'application/json',
    };
    if (req.body !== undefined) headers['content-type'] = 'application/json';
    const t = req.timeouts;
    const pool = this.pool(url.origin, t?.connectMs);
    return new Promise((resolve, reject) => {
      pool.dispatch(
        {
          method: req.method ?? 'POST',
          path: url.pathname + url.search,
          headers,
          body: req.body,
          headersTimeout: t?.firstByteMs,
          bodyTimeout: t?.idleMs,
        },
        new UpstreamCall(resolve, reject, req.abort),
      );
    });
  }

  /** Parsed upstream URLs: a handful of distinct ones (provider × endpoint), parsed once each. */
  private readonly urls = new Map<string, { origin: string; pathname: string; search: string }>();

  private url(href: string): { origin: string; pathname: string; search: string } {
    let u = this.urls.get(href);
    if (!u) {
      const parsed = new URL(href);
      u = { origin: parsed.origin, pathname: parsed.pathname, search: parsed.search };
      if (this.urls.size >= 1000) this.urls.clear();
      this.urls.set(href, u);
    }
    return u;
  }

  async close(): Promise<void> {
    await Promise.all([...this.pools.values()].map((p) => p.close()));
    this.pools.clear();
  }
}
