import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';

/**
 * src/providers/undici.ts loads only the undici modules the gateway uses, by their paths inside the
 * package. Checked against the installed undici in a fresh process, so no other import of the package
 * can have loaded its index first.
 */
describe('undici, loaded in part', () => {
  it('pools answer request() with the package index never loaded, and errors are the package’s own', () => {
    const script = `
      import { createRequire } from 'node:module';
      import http from 'node:http';
      import { Pool, errors } from './src/providers/undici.ts';
      const require = createRequire(import.meta.url);
      const indexPath = require.resolve('undici');
      const server = http.createServer((req, res) => {
        if (req.url === '/slow') return; // never answers: the headers timeout fires
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ path: req.url, method: req.method }));
      });
      await new Promise((r) => server.listen(0, '127.0.0.1', r));
      const pool = new Pool('http://127.0.0.1:' + server.address().port, { headersTimeout: 200 });
      const res = await pool.request({ method: 'POST', path: '/v1/x', body: '{}' });
      const body = await res.body.json();
      let timeout = null;
      try {
        await pool.request({ method: 'GET', path: '/slow' });
      } catch (e) {
        timeout = e;
      }
      const indexLoadedBefore = indexPath in require.cache;
      const pkg = require('undici');
      console.log(JSON.stringify({
        status: res.statusCode,
        body,
        indexLoadedBefore,
        timeoutIsHeadersTimeout: timeout instanceof errors.HeadersTimeoutError,
        timeoutIsUndiciError: timeout instanceof pkg.errors.UndiciError,
        samePool: pkg.Pool === Pool,
        sameErrors: pkg.errors === errors,
      }));
      await pool.destroy();
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
      timeoutIsHeadersTimeout: true,
      timeoutIsUndiciError: true,
      samePool: true,
      sameErrors: true,
    });
  });
});
