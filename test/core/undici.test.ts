import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';

/**
 * src/providers/undici.ts loads only the undici modules the gateway uses, by their paths inside the
 * package. Checked against the installed undici in a fresh process, so no other import of the package
 * can have loaded its index first.
 */
describe('undici, loaded in part', () => {
  it('upstream calls work with the package index (and its request API) never loaded, and errors are the package’s own', () => {
    const script = `
      import { createRequire } from 'node:module';
      import http from 'node:http';
      import { Client, buildConnector, errors } from './src/providers/undici.ts';
      import { Upstreams } from './src/providers/upstream.ts';
      const require = createRequire(import.meta.url);
      const indexPath = require.resolve('undici');
      const server = http.createServer((req, res) => {
        if (req.url === '/slow') return; // never answers: the headers timeout fires
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ path: req.url, method: req.method }));
      });
      await new Promise((r) => server.listen(0, '127.0.0.1', r));
      const base = 'http://127.0.0.1:' + server.address().port;
      const upstreams = new Upstreams({ connectMs: 1000, firstByteMs: 200, idleMs: 1000 });
      const res = await upstreams.request({ baseUrl: base, path: '/v1/x', headers: {}, body: '{}' });
      const body = JSON.parse(await res.body.text());
      let timeout = null;
      try {
        await upstreams.request({ baseUrl: base, path: '/slow', method: 'GET', headers: {} });
      } catch (e) {
        timeout = e;
      }
      const indexLoadedBefore = indexPath in require.cache;
      const requestApiLoaded = Object.keys(require.cache).some((k) => k.includes('undici/lib/api/'));
      const pkg = require('undici');
      console.log(JSON.stringify({
        status: res.statusCode,
        body,
        indexLoadedBefore,
        timeoutIsHeadersTimeout: timeout instanceof errors.HeadersTimeoutError,
        timeoutIsUndiciError: timeout instanceof pkg.errors.UndiciError,
        requestApiLoaded,
        sameClient: pkg.Client === Client,
        sameConnector: pkg.buildConnector === buildConnector,
        sameErrors: pkg.errors === errors,
      }));
      await upstreams.close();
      server.close();
    `;
    const out = execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      cwd: new URL('../..', import.meta.url),
      encoding: 'utf8',
      timeout: 20_000,
    });
    expect(JSON.parse(out.trim().split('\n').pop()!)).toEqual({
      status: 200,
      body: { path: '/v1/x', method: 'POST' },
      indexLoadedBefore: false,
      requestApiLoaded: false,
      timeoutIsHeadersTimeout: true,
      timeoutIsUndiciError: true,
      sameClient: true,
      sameConnector: true,
      sameErrors: true,
    });
  });
});
