import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClientPool } from '../../src/providers/client-pool.js';
import { errors } from '../../src/providers/undici.js';
import { type UpstreamResponse, Upstreams } from '../../src/providers/upstream.js';
import { UpstreamCall } from '../../src/providers/upstream-call.js';

/** The upstream connection pool (src/providers/client-pool.ts) against a real HTTP server. */
describe('upstream connection pool', () => {
  let server: http.Server;
  let base: string;
  /** Every connection the server accepted, in order; a request's answer names its connection. */
  const sockets: Socket[] = [];
  /** Requests to /hold wait here until released. */
  const held: Array<() => void> = [];

  beforeAll(async () => {
    server = http.createServer((req, res) => {
      const conn = sockets.indexOf(req.socket);
      const answer = () => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ conn }));
      };
      if (req.url === '/hold') held.push(answer);
      else answer();
    });
    server.on('connection', (s: Socket) => sockets.push(s));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });

  const options = { connectMs: 2_000, keepAliveTimeout: 30_000, headersTimeout: 5_000, bodyTimeout: 5_000 };

  function call(pool: ClientPool, path: string): Promise<UpstreamResponse> {
    return new Promise((resolve, reject) => {
      pool.dispatch({ method: 'GET', path, headers: {} }, new UpstreamCall(resolve, reject, undefined));
    });
  }

  async function connOf(r: Promise<UpstreamResponse>): Promise<number> {
    return (JSON.parse(await (await r).body.text()) as { conn: number }).conn;
  }

  async function until(what: () => boolean): Promise<void> {
    for (let i = 0; i < 200 && !what(); i++) await new Promise((r) => setTimeout(r, 10));
    expect(what()).toBe(true);
  }

  it('sends sequential requests over one connection', async () => {
    const pool = new ClientPool(new URL(base), options);
    const first = sockets.length;
    const conns = [];
    for (let i = 0; i < 5; i++) {
      conns.push(await connOf(call(pool, '/')));
      // undici frees a connection one event-loop turn after its answer ends.
      await until(() => pool.idle === 1);
    }
    expect(new Set(conns).size).toBe(1);
    expect(sockets.length - first).toBe(1);
    expect(pool.size).toBe(1);
    await pool.close();
  });

  it('opens one connection per concurrent request, with no cap, and reuses them all afterwards, the last freed first', async () => {
    const pool = new ClientPool(new URL(base), options);
    const first = sockets.length;
    const n = 300;
    const open = Array.from({ length: n }, () => connOf(call(pool, '/hold')));
    await until(() => held.length === n);
    expect(pool.size).toBe(n);
    expect(pool.idle).toBe(0);
    // Released one by one, in order: the stack of free connections ends with the last one answered.
    const order: number[] = [];
    for (const [i, answer] of held.splice(0).entries()) {
      answer();
      order.push(await open[i]!);
    }
    await until(() => pool.idle === n);
    expect(sockets.length - first).toBe(n);
    // One request alone takes the most recently freed connection.
    expect(await connOf(call(pool, '/'))).toBe(order[n - 1]);
    await until(() => pool.idle === n);
    // The next burst reuses them all: no new connection.
    const again = await Promise.all(Array.from({ length: n }, () => connOf(call(pool, '/'))));
    expect(sockets.length - first).toBe(n);
    expect(new Set(again).size).toBe(n);
    expect(pool.size).toBe(n);
    await pool.close();
  });

  it('drops a free connection the upstream closed, and opens a new one for the next request', async () => {
    const pool = new ClientPool(new URL(base), options);
    const conn = await connOf(call(pool, '/'));
    await until(() => pool.idle === 1);
    sockets[conn]!.destroy();
    await until(() => pool.size === 0);
    expect(pool.idle).toBe(0);
    const next = await connOf(call(pool, '/'));
    expect(next).not.toBe(conn);
    expect(pool.size).toBe(1);
    await pool.close();
  });

  it('drops every free connection when many close at once (a burst reaching its keep-alive timeout)', async () => {
    const pool = new ClientPool(new URL(base), options);
    const n = 200;
    const open = Array.from({ length: n }, () => connOf(call(pool, '/hold')));
    await until(() => held.length === n);
    for (const answer of held.splice(0)) answer();
    const conns = await Promise.all(open);
    await until(() => pool.idle === n);
    // The half freed last (the top of the stack) close: the other half stay free and are taken next.
    for (const c of conns.slice(n / 2)) sockets[c]!.destroy();
    await until(() => pool.size === n / 2);
    expect(pool.idle).toBe(n / 2);
    const first = sockets.length;
    const again = await Promise.all(Array.from({ length: n / 2 }, () => connOf(call(pool, '/'))));
    expect(sockets.length - first).toBe(0);
    expect(new Set(again)).toEqual(new Set(conns.slice(0, n / 2)));
    await until(() => pool.idle === n / 2);
    // Then the rest close: nothing is left, and the next request opens a new connection.
    for (const c of conns.slice(0, n / 2)) sockets[c]!.destroy();
    await until(() => pool.size === 0);
    expect(pool.idle).toBe(0);
    const next = await connOf(call(pool, '/'));
    expect(sockets.length - first).toBe(1);
    expect(conns).not.toContain(next);
    await pool.close();
  });

  it('gives a connection that failed to connect no other request, and recovers when the upstream is back', async () => {
    // A port nothing listens on (taken, then freed).
    const probe = http.createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    const port = (probe.address() as AddressInfo).port;
    await new Promise((r) => probe.close(r));
    const pool = new ClientPool(new URL(`http://127.0.0.1:${port}`), options);
    const err = await call(pool, '/').catch((e: NodeJS.ErrnoException) => e);
    expect((err as NodeJS.ErrnoException).code).toBe('ECONNREFUSED');
    expect(pool.size).toBe(0);
    expect(pool.idle).toBe(0);
    const back = http.createServer((_req, res) => res.end('{"back":true}'));
    await new Promise<void>((r) => back.listen(port, '127.0.0.1', r));
    const r = await call(pool, '/');
    expect(await r.body.text()).toBe('{"back":true}');
    await pool.close();
    back.closeAllConnections();
    await new Promise((r) => back.close(r));
  });

  it('keeps a connection undici refused a request for (an invalid header) free for the next one', async () => {
    const pool = new ClientPool(new URL(base), options);
    const bad = new Promise<UpstreamResponse>((resolve, reject) => {
      pool.dispatch(
        { method: 'GET', path: '/', headers: { 'x-bad': 'a\r\nb' } },
        new UpstreamCall(resolve, reject, undefined),
      );
    });
    await expect(bad).rejects.toBeInstanceOf(errors.InvalidArgumentError);
    expect(pool.size).toBe(1);
    expect(pool.idle).toBe(1);
    const first = sockets.length;
    await connOf(call(pool, '/'));
    expect(sockets.length - first).toBe(1);
    expect(pool.size).toBe(1);
    await until(() => pool.idle === 1);
    await pool.close();
  });

  it('closes its connections on close(), and refuses requests after it', async () => {
    const pool = new ClientPool(new URL(base), options);
    const conn = await connOf(call(pool, '/'));
    const closed = new Promise((r) => sockets[conn]!.once('close', r));
    await pool.close();
    await closed;
    expect(pool.size).toBe(0);
    await expect(call(pool, '/')).rejects.toBeInstanceOf(errors.ClientClosedError);
  });

  it('serves the gateway: Upstreams keeps one pool per origin and reuses its connection', async () => {
    const upstreams = new Upstreams({ connectMs: 2_000, firstByteMs: 5_000, idleMs: 5_000 });
    const first = sockets.length;
    for (let i = 0; i < 3; i++) {
      const r = await upstreams.request({ baseUrl: base, path: '/', method: 'GET', headers: {} });
      await r.body.text();
      await new Promise((done) => setTimeout(done, 5));
    }
    expect(sockets.length - first).toBe(1);
    await upstreams.close();
  });
});
