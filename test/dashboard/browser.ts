import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { type Browser, chromium } from 'playwright-core';

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
export const hasChromium = existsSync(CHROMIUM);
export const SHOTS = join(process.cwd(), 'test-artifacts', 'screenshots');

const BUILT = 'dist/dashboard/index.html';
const LOCK = 'dist/.dashboard-build.lock';

function newestSource(dir: string): number {
  let t = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    t = Math.max(t, e.isDirectory() ? newestSource(p) : statSync(p).mtimeMs);
  }
  return t;
}

/** The build exists and is newer than the dashboard's sources and the lock file. */
function built(): boolean {
  if (!existsSync(BUILT)) return false;
  const sources = Math.max(newestSource('dashboard'), statSync('package-lock.json').mtimeMs);
  return statSync(BUILT).mtimeMs >= sources;
}

const pause = (ms: number) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);

/**
 * Build the dashboard's static assets when they are missing (a fresh clone has no dist/) or older
 * than its sources. Test files run in parallel workers: one builds, the others wait for its lock.
 */
export function ensureDashboardBuilt(): void {
  if (built()) return;
  mkdirSync('dist', { recursive: true });
  for (;;) {
    try {
      mkdirSync(LOCK);
      break;
    } catch {
      // A lock left by a crashed run is taken over after three minutes.
      try {
        if (Date.now() - statSync(LOCK).mtimeMs > 180_000) rmSync(LOCK, { recursive: true, force: true });
      } catch {}
      pause(250);
    }
  }
  try {
    if (built()) return;
    const r = spawnSync('npx', ['vite', 'build', '-c', 'dashboard/vite.config.ts'], { stdio: 'inherit' });
    if (r.status !== 0) throw new Error('dashboard build failed');
  } finally {
    rmSync(LOCK, { recursive: true, force: true });
  }
}

/** Debian's Chromium, headless, with no background network (this machine has none). */
export function launch(): Promise<Browser> {
  mkdirSync(SHOTS, { recursive: true });
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--disable-dev-shm-usage',
    ],
  });
}
