import { type Dispatcher, Pool } from 'undici';

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
  signal?: AbortSignal;
}

/** Keep-alive undici pools, one per upstream origin, shared by every request. */
export class Upstreams {
  private readonly pools = new Map<string, Pool>();

  constructor(private readonly timeouts: UpstreamTimeouts) {}

  private pool(origin: string): Pool {
    let p = this.pools.get(origin);
    if (!p) {
      p = new Pool(origin, {
        connections: 256,
        pipelining: 1,
        keepAliveTimeout: 30_000,
        connect: { timeout: this.timeouts.connectMs },
        headersTimeout: this.timeouts.firstByteMs,
        bodyTimeout: this.timeouts.idleMs,
      });
      this.pools.set(origin, p);
    }
    return p;
  }

  request(req: UpstreamRequest): Promise<Dispatcher.ResponseData> {
    const url = new URL(req.baseUrl + req.path);
    const headers: Record<string, string> = {
      ...req.headers,
      accept: req.headers.accept ?? 'application/json',
    };
    if (req.body !== undefined) headers['content-type'] = 'application/json';
    return this.pool(url.origin).request({
      method: req.method ?? 'POST',
      path: url.pathname + url.search,
      headers,
      body: req.body,
      signal: req.signal,
    });
  }

  async close(): Promise<void> {
    await Promise.all([...this.pools.values()].map((p) => p.close().catch(() => p.destroy())));
    this.pools.clear();
  }
}
