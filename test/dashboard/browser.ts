import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { type Browser, chromium } from 'playwright-core';

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
export const hasChromium = existsSync(CHROMIUM);
export const SHOTS = join(process.cwd(), 'test-artifacts', 'screenshots');

/** Build the dashboard's static assets once when they are missing (a fresh clone has no dist/). */
export function ensureDashboardBuilt(): void {
  if (existsSync('dist/dashboard/index.html')) return;
  const r = spawnSync('npx', ['vite', 'build', '-c', 'dashboard/vite.config.ts'], { stdio: 'inherit' });
  if (r.status !== 0) throw new Error('dashboard build failed');
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
