import { Agent, createServer, request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Backend {
  name: string;
  port: number;
  /**
   * Set while the process is being killed or restarted: the proxy sends it no new request (a load
   * balancer deregisters a target it stops), and requests in flight then may fail.
   */
  down: boolean;
  /** Bumped on every kill: a request whose backend's generation changed was caught by the kill. */
  generation: number;
}

export interface ProxiedOutcome {
  backend: string | null;
  /** True when the backend was killed while this request was in flight. */
  caughtByKill: boolean;
}

/**
 * A small round-robin HTTP proxy for the cluster test: streams bodies both ways, skips backends
 * that are being stopped and those that refuse connections (as a load balancer does), and never
 * re-sends a request a backend received. It tags each response with the backend that served it.
 *
 * Skipping a backend from the moment it is signalled matters for SIGTERM: a connection the kernel
 * has completed but the process has not yet accepted when it closes its listening socket is reset,
 * and the proxy cannot tell that reset from a process that died with the request.
 */
export async function startRoundRobin(
  backends: Backend[],
): Promise<{ url: string; server: Server; close(): Promise<void> }> {
  const agent = new Agent({ keepAlive: false });
  let next = 0;
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      let tries = 0;
      const attempt = () => {
        let b = backends[next++ % backends.length]!;
        for (let skip = 1; b.down && skip < backends.length; skip++) b = backends[next++ % backends.length]!;
        tries++;
        const gen = b.generation;
        let sent = false;
        const up = httpRequest(
          { host: '127.0.0.1', port: b.port, method: req.method, path: req.url, headers: req.headers, agent },
          (ur) => {
            res.writeHead(ur.statusCode ?? 502, {
              ...ur.headers,
              'x-cluster-backend': b.name,
              'x-cluster-generation': String(gen),
            });
            res.flushHeaders();
            ur.pipe(res);
            ur.on('error', () => res.destroy());
            ur.on('aborted', () => res.destroy());
          },
        );
        up.on('error', (err: NodeJS.ErrnoException) => {
          // Never connected: the request reached no backend, so another may take it.
          if (!sent && !res.headersSent && tries < backends.length * 20) {
            setTimeout(attempt, tries > backends.length ? 50 : 0);
            return;
          }
          if (!res.headersSent) {
            res.writeHead(502, {
              'content-type': 'application/json',
              'x-cluster-backend': b.name,
              'x-cluster-generation': String(gen),
              'x-cluster-cause': `backend_died ${err.code ?? err.message}${sent ? ' after connect' : ''}`,
            });
            res.end(JSON.stringify({ error: { message: `backend ${b.name}: ${err.code ?? err.message}` } }));
          } else res.destroy();
        });
        up.on('socket', (s) => s.on('connect', () => (sent = true)));
        up.end(body);
      };
      attempt();
    });
  });
  // Longer than clients' keep-alive, so a client never reuses a connection the proxy is closing.
  server.keepAliveTimeout = 65_000;
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    server,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
