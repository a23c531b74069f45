import { createRequire } from 'node:module';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase } from '../helpers/db.js';
import { type RunningGateway, startGateway } from '../helpers/gateway.js';

const loaded = (pkg: string) =>
  Object.keys(createRequire(import.meta.url).cache).some((p) => p.includes(`/node_modules/${pkg}/`));

/** /openapi.json and /docs are built on their first request (src/http/docs.ts). */
describe('API documentation', () => {
  let g: RunningGateway;
  beforeAll(async () => {
    g = await startGateway(await createTestDatabase('sqlite'));
  });
  afterAll(async () => {
    await g?.close();
    await g?.db.drop();
  });

  it('loads nothing for the docs until they are asked for, then documents every route', async () => {
    expect(loaded('@fastify/swagger')).toBe(false);
    expect(loaded('@fastify/swagger-ui')).toBe(false);
    const res = await fetch(`${g.url}/openapi.json`);
    expect(res.status).toBe(200);
    const doc = (await res.json()) as {
      info: { title: string };
      paths: Record<string, Record<string, { requestBody?: unknown }>>;
      components: { securitySchemes: Record<string, unknown> };
    };
    expect(loaded('@fastify/swagger')).toBe(true);
    expect(doc.info.title).toBe('Gatewayz');
    expect(doc.components.securitySchemes.bearer).toEqual({ type: 'http', scheme: 'bearer' });
    expect(doc.paths['/v1/chat/completions']?.post?.requestBody).toBeDefined();
    expect(doc.paths['/admin/create']?.post).toBeDefined();
    // Hidden routes stay out, as do the docs' own.
    expect(Object.keys(doc.paths).filter((p) => p.startsWith('/dashboard') || p.startsWith('/docs'))).toEqual(
      [],
    );
    expect(doc.paths['/openapi.json']).toBeUndefined();
  });

  it('serves Swagger UI, its assets and the document under /docs, and the gateway 404 elsewhere', async () => {
    const page = await fetch(`${g.url}/docs`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toContain('text/html');
    expect(await page.text()).toContain('swagger-initializer.js');
    const css = await fetch(`${g.url}/docs/static/swagger-ui.css`);
    expect(css.status).toBe(200);
    expect(css.headers.get('content-type')).toContain('text/css');
    expect((await css.text()).length).toBeGreaterThan(10_000);
    const json = await fetch(`${g.url}/docs/json`);
    expect(((await json.json()) as { paths: object }).paths).toHaveProperty('/v1/models');
    const redirect = await fetch(`${g.url}/docs/static/index.html`, { redirect: 'manual' });
    expect(redirect.status).toBe(302);
    expect(redirect.headers.get('location')).toBe('/docs/');
    const missing = await fetch(`${g.url}/docs/static/nope.js`);
    expect(missing.status).toBe(404);
    expect(missing.headers.get('x-request-id')).toBeTruthy();
  });
});
