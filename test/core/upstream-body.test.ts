import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RequestAbort } from '../../src/lib/abort.js';
import { errors } from '../../src/providers/undici.js';
import { Upstreams } from '../../src/providers/upstream.js';
import { BodyTooLarge, type UpstreamBody } from '../../src/providers/upstream-call.js';

/** The gateway's upstream body (src/providers/upstream-call.ts) against a real HTTP server. */
describe('upstream bodies', () => {
  const MiB = 1024 * 1024;
  let server: http.Server;
  let base: string;
  /** Bytes the server's socket accepted for the current /big answer. */
  let flushed = 0;
  let bigDone: Promise<void> = Promise.resolve();
  const upstreams = new Upstreams({ connectMs: 2_000, firstByteMs: 5_000, idleMs: 5_000 });

  beforeAll(async () => {
    server = http.createServer((req, res) => {
      if (req.url === '/big') {
        // 256 MiB, written only as fast as the reader takes it.
        flushed = 0;
        const chunk = Buffer.alloc(64 * 1024, 97);
        let left = 4096;
        bigDone = new Promise((done) => {
          const pump = () => {
            while (left > 0) {
              left--;
              const ok = res.write(chunk, () => {
                flushed += chunk.length;
              });
              if (!ok) return void res.once('drain', pump);
            }
            res.end(done);
          };
          res.on('close', done);
          pump();
        });
        return;
      }
      if (req.url === '/half') {
        // Part of the body, then the connection dies.
        res.writeHead(200, { 'content-length': '100' });
        res.write('x'.repeat(40), () => setTimeout(() => res.destroy(), 50));
        return;
      }
      if (req.url === '/stall') {
        res.writeHead(200);
        res.write('first');
        return; // never finishes: the body timeout or an abort ends it
      }
      res.writeHead(200, { 'content-type': 'application/json', 'x-twice': ['a', 'b'] });
      res.end(JSON.stringify({ path: req.url, method: req.method }));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    await upstreams.close();
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });

  /** A request whose answer sends 'first' and then nothing, with the abort that can end it. */
  const stalledWithAbort = async () => {
    const ac = new RequestAbort();
    const res = await upstreams.request({
      baseUrl: base,
      path: '/stall',
      method: 'GET',
      headers: {},
      abort: ac,
    });
    return { ac, res };
  };

  it('status, headers (repeated ones as arrays) and the body as text', async () => {
    const res = await upstreams.request({ baseUrl: base, path: '/v1/x?q=1', headers: {}, body: '{}' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toBe('application/json');
    expect(res.headers['x-twice']).toEqual(['a', 'b']);
    expect(JSON.parse(await res.body.text())).toEqual({ path: '/v1/x?q=1', method: 'POST' });
  });

  it('a reader that stops reading stops the upstream socket (back-pressure), then gets every byte', async () => {
    const res = await upstreams.request({ baseUrl: base, path: '/big', method: 'GET', headers: {} });
    const it = res.body[Symbol.asyncIterator]();
    let read = (await it.next()).value!.length;
    await new Promise((r) => setTimeout(r, 500));
    // Paused: the server got no further than the kernel's socket buffers plus our 64 KiB queue.
    const whilePaused = flushed;
    expect(whilePaused).toBeLessThan(48 * MiB);
    await new Promise((r) => setTimeout(r, 300));
    expect(flushed).toBe(whilePaused);
    for (let r = await it.next(); !r.done; r = await it.next()) read += r.value.length;
    await bigDone;
    expect(read).toBe(256 * MiB);
    expect(flushed).toBe(256 * MiB);
  });

  it('a connection that dies mid-body: the chunks read so far, then the error', async () => {
    const res = await upstreams.request({ baseUrl: base, path: '/half', method: 'GET', headers: {} });
    let got = '';
    const err = await (async () => {
      for await (const c of res.body) got += c.toString();
    })().catch((e: Error) => e);
    expect(got).toBe('x'.repeat(40));
    expect(err).toBeInstanceOf(errors.UndiciError);
    expect(res.body.destroyed).toBe(true);
  });

  it('the request’s abort mid-body ends the reader with its reason and closes the socket', async () => {
    const { ac, res } = await stalledWithAbort();
    const it = res.body[Symbol.asyncIterator]();
    expect((await it.next()).value!.toString()).toBe('first');
    const reason = new Error('client closed the connection');
    setTimeout(() => ac.abort(reason), 50);
    await expect(it.next()).rejects.toBe(reason);
  });

  it('an abort before the answer rejects the request with the reason', async () => {
    const ac = new RequestAbort();
    const reason = new Error('total timeout');
    ac.abort(reason);
    await expect(
      upstreams.request({ baseUrl: base, path: '/x', method: 'GET', headers: {}, abort: ac }),
    ).rejects.toBe(reason);
  });

  it('a body idle past its timeout fails with undici’s BodyTimeoutError', async () => {
    const res = await upstreams.request({
      baseUrl: base,
      path: '/stall',
      method: 'GET',
      headers: {},
      timeouts: { idleMs: 200 },
    });
    const err = await res.body.text().catch((e: Error) => e);
    expect(err).toBeInstanceOf(errors.BodyTimeoutError);
  });

  it('all(): the whole body in one Buffer, resuming a socket the unread queue had paused', async () => {
    const res = await upstreams.request({ baseUrl: base, path: '/big', method: 'GET', headers: {} });
    await new Promise((r) => setTimeout(r, 300)); // nobody reads yet: the queue fills, the socket pauses
    expect(flushed).toBeLessThan(48 * MiB);
    const buf = await res.body.all(512 * MiB);
    expect(buf.length).toBe(256 * MiB);
    expect(buf[0]).toBe(97);
    expect(buf[buf.length - 1]).toBe(97);
    await bigDone;
  });

  it('all(limit): past the limit it rejects and closes the socket', async () => {
    const res = await upstreams.request({ baseUrl: base, path: '/big', method: 'GET', headers: {} });
    await expect(res.body.all(4 * MiB)).rejects.toBeInstanceOf(BodyTooLarge);
    expect(res.body.destroyed).toBe(true);
    await bigDone; // the server saw its connection close
    expect(flushed).toBeLessThan(64 * MiB);
  });

  it('all(): a connection that dies mid-body rejects with its error; the request’s abort with its reason', async () => {
    const half = await upstreams.request({ baseUrl: base, path: '/half', method: 'GET', headers: {} });
    expect(await half.body.all(MiB).catch((e: Error) => e)).toBeInstanceOf(errors.UndiciError);
    expect(half.body.destroyed).toBe(true);

    const { ac, res: stall } = await stalledWithAbort();
    const reason = new Error('client closed the connection');
    setTimeout(() => ac.abort(reason), 50);
    await expect(stall.body.all(MiB)).rejects.toBe(reason);
  });

  it('leaving the loop early destroys the body; the next request gets a fresh answer', async () => {
    const res = await upstreams.request({ baseUrl: base, path: '/stall', method: 'GET', headers: {} });
    for await (const c of res.body) {
      expect(c.toString()).toBe('first');
      break;
    }
    expect(res.body.destroyed).toBe(true);
    const again = await upstreams.request({ baseUrl: base, path: '/after', method: 'GET', headers: {} });
    expect(JSON.parse(await again.body.text())).toEqual({ path: '/after', method: 'GET' });
  });
  /** Read a body in push mode; `onChunk` may pause or destroy it. Resolves with what `end` got. */
  const pushRead = (body: UpstreamBody, onChunk: (c: Buffer) => void) =>
    new Promise<Error | null>((resolve) => {
      let ends = 0;
      body.read({
        chunk: onChunk,
        end: (err) => {
          ends++;
          // end is called once: a second call would show here before the test's assertions.
          setTimeout(() => resolve(ends === 1 ? err : new Error(`end called ${ends} times`)), 20);
        },
      });
    });

  it('read(): chunks pushed as they arrive, queued ones first, then end once', async () => {
    const res = await upstreams.request({ baseUrl: base, path: '/v1/push', headers: {}, body: '{}' });
    await new Promise((r) => setTimeout(r, 50)); // the whole answer is queued before the reader comes
    let got = '';
    expect(await pushRead(res.body, (c) => (got += c.toString()))).toBeNull();
    expect(JSON.parse(got)).toEqual({ path: '/v1/push', method: 'POST' });
  });

  it('read(): a paused reader stops the upstream socket (back-pressure); resume() hands over every byte', async () => {
    const res = await upstreams.request({ baseUrl: base, path: '/big', method: 'GET', headers: {} });
    let read = 0;
    let chunks = 0;
    const ended = pushRead(res.body, (c) => {
      read += c.length;
      if (++chunks === 1) res.body.pause();
    });
    await new Promise((r) => setTimeout(r, 500));
    const whilePaused = flushed;
    expect(chunks).toBe(1);
    expect(whilePaused).toBeLessThan(48 * MiB);
    await new Promise((r) => setTimeout(r, 300));
    expect(flushed).toBe(whilePaused);
    res.body.resume();
    expect(await ended).toBeNull();
    await bigDone;
    expect(read).toBe(256 * MiB);
    expect(flushed).toBe(256 * MiB);
  });

  it('read(): a connection that dies mid-body ends the reader with the error, after the chunks', async () => {
    const res = await upstreams.request({ baseUrl: base, path: '/half', method: 'GET', headers: {} });
    let got = '';
    const err = await pushRead(res.body, (c) => (got += c.toString()));
    expect(got).toBe('x'.repeat(40));
    expect(err).toBeInstanceOf(errors.UndiciError);
    expect(res.body.destroyed).toBe(true);
  });

  it('read(): an error while paused comes after the queued chunks, on resume()', async () => {
    const res = await upstreams.request({ baseUrl: base, path: '/half', method: 'GET', headers: {} });
    res.body.pause();
    let got = '';
    const ended = pushRead(res.body, (c) => (got += c.toString()));
    await new Promise((r) => setTimeout(r, 200)); // the connection died meanwhile
    expect(got).toBe('');
    res.body.resume();
    expect(await ended).toBeInstanceOf(errors.UndiciError);
    expect(got).toBe('x'.repeat(40));
  });

  it('read(): the request’s abort ends the reader with its reason; destroy() from a chunk ends it with null', async () => {
    const { ac, res: stall } = await stalledWithAbort();
    const reason = new Error('client closed the connection');
    let first = '';
    const ended = pushRead(stall.body, (c) => {
      first = c.toString();
      setTimeout(() => ac.abort(reason), 50);
    });
    expect(await ended).toBe(reason);
    expect(first).toBe('first');

    const again = await upstreams.request({ baseUrl: base, path: '/stall', method: 'GET', headers: {} });
    expect(await pushRead(again.body, () => again.body.destroy())).toBeNull();
    expect(again.body.destroyed).toBe(true);
    // A body destroyed before anyone reads it ends its reader at once.
    expect(await pushRead(again.body, () => {})).toBeNull();
    const after = await upstreams.request({ baseUrl: base, path: '/after', method: 'GET', headers: {} });
    expect(JSON.parse(await after.body.text())).toEqual({ path: '/after', method: 'GET' });
  });
});
