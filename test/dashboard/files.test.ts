import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dashboardRoutes } from '../../src/web/routes.js';

/** The dashboard's files: small ones from memory, large ones from disk on request (src/web/routes.ts). */
describe('dashboard files', () => {
  let dir: string;
  let app: FastifyInstance;
  let url: string;
  const big = Buffer.alloc(300 * 1024, 'x');
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'gwz-dash-'));
    mkdirSync(join(dir, 'assets'));
    writeFileSync(join(dir, 'index.html'), '<!doctype html><title>dash</title>');
    writeFileSync(join(dir, 'assets', 'small-1.css'), 'body{}');
    writeFileSync(join(dir, 'assets', 'big-1.js'), big);
    writeFileSync(join(dir, 'assets', 'gone-1.js'), big);
    app = Fastify();
    dashboardRoutes(app, { dir });
    await app.listen({ port: 0, host: '127.0.0.1' });
    url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await app?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('serves small and large files, with their types and an immutable cache for assets', async () => {
    const page = await fetch(`${url}/dashboard/`);
    expect(page.status).toBe(200);
    expect(page.headers.get('cache-control')).toBe('no-cache');
    expect(await page.text()).toContain('<title>dash</title>');
    const css = await fetch(`${url}/dashboard/assets/small-1.css`);
    expect(css.headers.get('content-type')).toBe('text/css; charset=utf-8');
    expect(await css.text()).toBe('body{}');
    const js = await fetch(`${url}/dashboard/assets/big-1.js`);
    expect(js.status).toBe(200);
    expect(js.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
    expect(js.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
    expect(Buffer.from(await js.arrayBuffer()).equals(big)).toBe(true);
  });

  it('reads large files from disk when asked: a file removed since start is a 404, never cached', async () => {
    // Changed on disk after start: what is served is what the file holds now.
    writeFileSync(join(dir, 'assets', 'big-1.js'), 'changed');
    expect(await (await fetch(`${url}/dashboard/assets/big-1.js`)).text()).toBe('changed');
    rmSync(join(dir, 'assets', 'gone-1.js'));
    const gone = await fetch(`${url}/dashboard/assets/gone-1.js`);
    expect(gone.status).toBe(404);
    expect(gone.headers.get('cache-control')).toBeNull();
    // Names never listed at start are not looked up on disk at all.
    writeFileSync(join(dir, 'assets', 'new-1.js'), 'new');
    expect((await fetch(`${url}/dashboard/assets/new-1.js`)).status).toBe(404);
    expect((await fetch(`${url}/dashboard/assets/..%2F..%2Fetc%2Fpasswd`)).status).toBe(404);
  });
});
