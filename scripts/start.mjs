#!/usr/bin/env node
// `npm start`: build when dist/ is missing or older than the sources, then run the gateway.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

const newest = (dir) => {
  let t = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    t = Math.max(t, e.isDirectory() ? newest(p) : statSync(p).mtimeMs);
  }
  return t;
};
const stale = (out, src) => !existsSync(out) || newest(src) > statSync(out).mtimeMs;

const run = (args) => {
  const r = spawnSync('npx', args, { stdio: 'inherit' });
  if (r.status !== 0) process.exit(r.status ?? 1);
};
if (stale('dist/server.js', 'src')) run(['tsc', '-p', 'tsconfig.build.json']);
if (existsSync('dashboard') && stale('dist/dashboard/index.html', 'dashboard/src')) {
  run(['vite', 'build', '-c', 'dashboard/vite.config.ts']);
}
await import('../dist/server.js');
