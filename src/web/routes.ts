import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { extname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.woff2': 'font/woff2',
  '.json': 'application/json',
};

/**
 * Everything the page needs is served from here: no external scripts, fonts or connections — except,
 * when Privy sign-in is configured, the Privy auth API the page's Privy SDK calls.
 */
export function contentSecurityPolicy(privyApiUrl: string | null): string {
  const connect = privyApiUrl ? `'self' ${new URL(privyApiUrl).origin}` : "'self'";
  return `default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; connect-src ${connect}; frame-ancestors 'none'; base-uri 'self'; form-action 'self'`;
}

export interface DashboardOptions {
  /** Privy's auth API when Privy sign-in is configured (allowed in connect-src). */
  privyApiUrl?: string | null;
  dir?: string;
}

/** Files up to this size stay in memory; larger ones are read from disk when asked for. */
const IN_MEMORY_MAX_BYTES = 32 * 1024;

/**
 * The built dashboard (dist/dashboard); a missing build serves a hint. Its file list is read once at
 * start. Small files (the page, styles, small chunks) are kept in memory; the large chunks (the Privy
 * SDK alone is ~780 KB) are read from disk on request, so they cost no memory while nobody uses the
 * dashboard; browsers keep them (their names carry a content hash and are served as immutable).
 */
export function dashboardRoutes(app: FastifyInstance, opts: DashboardOptions = {}): void {
  const dir = opts.dir ?? defaultDir();
  const CSP = contentSecurityPolicy(opts.privyApiUrl ?? null);
  const files = new Map<string, { type: string; path: string; body: Buffer | null }>();
  const walk = (d: string, prefix: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p, `${prefix}${e.name}/`);
      else
        files.set(prefix + e.name, {
          type: TYPES[extname(e.name)] ?? 'application/octet-stream',
          path: p,
          body: statSync(p).size <= IN_MEMORY_MAX_BYTES ? readFileSync(p) : null,
        });
    }
  };
  if (existsSync(dir)) walk(dir, '');
  const index = files.get('index.html');

  app.get('/dashboard', { schema: { hide: true }, config: { auth: 'public' } }, async (_req, reply) =>
    reply.redirect('/dashboard/'),
  );
  app.get('/dashboard/*', { schema: { hide: true }, config: { auth: 'public' } }, async (request, reply) => {
    const path = (request.params as { '*': string })['*'];
    const file = files.get(path) ?? (path.startsWith('assets/') ? undefined : index);
    reply
      .header('content-security-policy', CSP)
      .header('x-content-type-options', 'nosniff')
      .header('referrer-policy', 'no-referrer');
    if (!file) {
      if (!index)
        return reply.code(404).type('text/plain').send('The dashboard is not built: run `npm run build`.');
      return reply.code(404).type('text/plain').send('Not found');
    }
    let body = file.body;
    if (!body) {
      try {
        body = await readFile(file.path);
      } catch {
        // Replaced by a new build since start: its names changed, this one is gone.
        return reply.code(404).type('text/plain').send('Not found');
      }
    }
    reply.header(
      'cache-control',
      path.startsWith('assets/') ? 'public, max-age=31536000, immutable' : 'no-cache',
    );
    return reply.type(file.type).send(body);
  });
}

function defaultDir(): string {
  // dist/dashboard beside the compiled server (dist/dashboard/…) or from the repo root when run from src/
  const here = fileURLToPath(new URL('.', import.meta.url));
  return resolve(here, '..', '..', 'dist', 'dashboard');
}
